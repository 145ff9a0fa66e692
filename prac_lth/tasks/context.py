"""One experiment context (data on the device, model factory) per process, shared by its tasks."""
from __future__ import annotations

from prac.settings.config import ExperimentConfig
from prac.imp.context import ExperimentContext, build_context

_current: dict[str, ExperimentContext] = {}


def experiment_context(config: ExperimentConfig) -> ExperimentContext:
    """The context of `config`, built once: tasks of one flow run reuse the data already on the device."""
    key = config.model_dump_json()
    if key not in _current:
        _current.clear()  # one dataset in memory at a time
        _current[key] = build_context(config)
    return _current[key]
