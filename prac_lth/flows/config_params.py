"""From flow parameters (preset, method, seed, overrides) to a validated experiment config."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from prac.settings.config import ExperimentConfig
from prac.errors import UserError
from prac.settings.overrides import validation_problems
from prac.build_config import build_config
from prac.imp.budget import check_references


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def experiment_config(preset: str, method: str, seed: int, overrides: list[str] | None,
                      config: dict[str, Any] | None = None) -> ExperimentConfig:
    """Raises UserError (one line) for an unknown preset, method, key or value, or a bad transfer source.
    The flows check their parameters' types here too (Prefect's own check would fail the run in several lines).
    `config`: a config its caller (the CLI, the compare flow) already built and checked, in its serialised form:
    read back, not built again; the names beside it must be its own."""
    for name, value in (("preset", preset), ("method", method)):
        if not isinstance(value, str):
            raise UserError(f"parameter {name} must be a name, got {_shown(value)}")
    if not _is_int(seed):
        raise UserError(f"parameter seed must be an integer, got {_shown(seed)}")
    if overrides is not None and not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        raise UserError(f"parameter overrides must be a list of 'key=value' strings, got {_shown(overrides)}")
    if config is None:
        return build_config(preset, method, seed, overrides or [])
    return _given_config(config, preset, method, seed, overrides)


def _given_config(config: object, preset: str, method: str, seed: int, overrides: list[str] | None
                  ) -> ExperimentConfig:
    if overrides:
        raise UserError("parameters overrides and config: give one or the other (a config has its overrides applied)")
    try:
        given = ExperimentConfig.model_validate(config)
    except ValidationError as error:
        raise UserError(f"parameter config is not an experiment config: {validation_problems(error)}") from None
    if (given.preset, given.method, given.seed) != (preset, method, seed):
        raise UserError(f"parameter config is {given.preset} · {given.method} · seed {given.seed}, "
                        f"not {preset} · {method} · seed {seed} as the other parameters say")
    return given


def check_comparison(methods: list[str], seeds: list[int], parallel: int) -> None:
    """The comparison's grid: at least one method and seed, each once (one experiment each), `parallel` ≥ 1."""
    if not (isinstance(methods, list) and methods and all(isinstance(m, str) for m in methods)):
        raise UserError(f"parameter methods must be a non-empty list of method names, got {_shown(methods)}")
    if not (isinstance(seeds, list) and seeds and all(_is_int(s) for s in seeds)):
        raise UserError(f"parameter seeds must be a non-empty list of integers, got {_shown(seeds)}")
    for name, values in (("methods", methods), ("seeds", seeds)):
        if twice := sorted({str(v) for v in values if values.count(v) > 1}):
            raise UserError(f"parameter {name} names {', '.join(twice)} twice: each experiment runs once")
    if not _is_int(parallel) or parallel < 1:
        raise UserError(f"parameter parallel must be an integer of at least 1, got {_shown(parallel)}")


def check_margin(points: Any) -> float:
    """The non-inferiority margin, given in accuracy points (0.5 by default), as a fraction: a number in
    [0, 100)."""
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not 0 <= points < 100 \
            or points != points:
        raise UserError(f"the non-inferiority margin must be a number of accuracy points in [0, 100), got "
                        f"{_shown(points)}")
    return points / 100


def comparison_configs(preset: str, methods: list[str], seeds: list[int], overrides: list[str] | None,
                       configs: list[dict[str, Any]] | None) -> list[ExperimentConfig]:
    """Every experiment's config, seed by seed, method by method, each checked before any trains: built here,
    or read back from `configs` (built by the caller with `overrides`, which still name the comparison)."""
    if configs is None:
        built = [experiment_config(preset, method, seed, overrides) for seed in seeds for method in methods]
    else:
        grid = [(seed, method) for seed in seeds for method in methods]
        if not isinstance(configs, list) or len(configs) != len(grid):
            raise UserError(f"parameter configs must be a list of {len(grid)} configs, one per seed × method")
        built = [experiment_config(preset, method, seed, None, config) for (seed, method), config in zip(grid, configs)]
    check_references(built)  # a method at prac's budget finds its prac run (prac.imp.budget)
    return built


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
