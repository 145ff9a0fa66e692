"""From flow parameters (preset, method, seed, overrides) to a validated experiment config."""
from __future__ import annotations

from prac.config import ExperimentConfig
from prac.errors import UserError
from prac.imp_steps import check_inputs
from prac.overrides import apply_overrides
from prac.presets import preset_config


def experiment_config(preset: str, method: str, seed: int, overrides: list[str] | None) -> ExperimentConfig:
    """Raises UserError (one line) for an unknown preset, method, key or value, or a bad transfer source."""
    config = apply_overrides(preset_config(preset), [f"method={method}", f"seed={seed}", *(overrides or [])])
    check_inputs(config)
    return config


def check_deployment_dataset(config: ExperimentConfig, deployment_name: str | None) -> None:
    """A deployment is named after its dataset (prac-lth/cifar10): its presets must use that dataset."""
    if deployment_name and deployment_name != config.data.dataset:
        raise UserError(f"preset '{config.preset}' uses dataset '{config.data.dataset}', "
                        f"not '{deployment_name}' as deployment prac-lth/{deployment_name} does")


def flat_params(config: ExperimentConfig) -> dict[str, object]:
    """All config fields as dotted keys (MLflow params)."""
    flat: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}{key}.", inner)
        else:
            flat[prefix[:-1]] = value

    walk("", config.model_dump(mode="json"))
    return flat
