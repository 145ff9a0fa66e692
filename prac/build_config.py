"""The one place an experiment's configuration is built and checked: a preset, the method and seed, and
`key=value` overrides, then everything a run reads besides its data (the dataset, model and method in their
registries, a transfer source, the output folder). The CLI and the flows' parameters both call build_config;
a bad input stops here as one UserError line, before anything is written."""
from __future__ import annotations

from prac.settings.config import ExperimentConfig
from prac.data.registry import get_spec
from prac.errors import UserError
from prac.strategies.methods import get_method
from prac.models import check_width, model_builder
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.layout.run_paths import check_output_dir


def build_config(preset: str, method: str, seed: int, overrides: list[str]) -> ExperimentConfig:
    config = apply_overrides(preset_config(preset), overrides, values={"method": method, "seed": seed})
    check_inputs(config)
    return config


def check_inputs(config: ExperimentConfig) -> None:
    """What a run reads besides its config and data, and where it writes, checked before any training
    (one-line UserError): an unknown dataset, model or method, what its selector reads (transfer's source), the
    output folder. (The registries sit above the config: their entries read configs.)"""
    get_spec(config.data.dataset)
    try:
        model_builder(config.model.name)
    except UserError as error:
        raise UserError(f"model.name: {error}") from None  # the setting to change, as for the others
    check_width(config.model.name, config.model.width)
    get_method(config.method).selector.check_inputs(config)
    check_output_dir(config.runtime.output_dir)  # last: a refused run creates no folder
