"""Models for lottery-ticket experiments; prunable weights are the nn.Conv2d / nn.Linear `.weight`s."""
from prac.models.registry import build_model, check_width, model_builder, model_names

__all__ = ["build_model", "check_width", "model_builder", "model_names"]
