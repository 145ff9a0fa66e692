"""Stable hashes of configurations: a run is found and resumed by what it is, not by a name."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prac.settings.config import ExperimentConfig
from prac.hardware.device import training_device
from prac.strategies.methods import ALL_PRAC_SETTINGS, get_method
from prac.hardware.precision import resolve_precision

# Fields that never change a result: where things run and are written (the precision `runtime` resolves to
# does, and is hashed apart: precision_of).
_NOT_RESULTS = {"runtime", "preset"}
# Round 0 (dense training on D0) is shared by the arms: what only later rounds use is left out.
_NOT_ROUND0 = {"method": None, "prune": {"rounds"}, "transfer": None,
               "prac": {"forget_threshold", "schedule_scaling", "min_epochs", "use_cep", "budget"}}


# What a method never reads stays out of its fingerprint (prac.strategies.methods: `reads`): lt and random train every
# round on D0 for the full schedule, so a sweep of PrAC's settings reuses their runs.
def _not_read_by(method: str) -> dict[str, set[str] | None]:
    described = get_method(method)
    return {"prac": set(ALL_PRAC_SETTINGS - described.reads), **({} if described.reads_transfer else {"transfer": None})}


def _digest(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# Settings added after results existed: hashed only when set to something other than their default, so the
# results of every earlier configuration keep their names (OpenLTH's rule for new hyperparameters).
# prac.budget's "own" is how the subset methods ran before it existed: their runs of that kind keep their names.
_HASHED_WHEN_SET = {"model": {"width": 1.0}, "prune": {"scope": "global"}, "transfer": {"source": None}, "prac": {"budget": "own"}}


def _hashed_fields(config: ExperimentConfig) -> dict[str, Any]:
    """Every field that can change a result, settings added later only when they are set."""
    fields = config.model_dump(mode="json", exclude=_NOT_RESULTS)
    for section, defaults in _HASHED_WHEN_SET.items():
        for name, default in defaults.items():
            if fields[section].get(name) == default:
                fields[section].pop(name)
        if not fields[section]:
            fields.pop(section)
    if "transfer" in fields:  # the source run by what it is (<preset>/<fingerprint>), not where it lies
        fields["transfer"]["source"] = "/".join(Path(fields["transfer"]["source"]).parts[-2:])
    precision = precision_of(config)
    if precision != "float32":  # float32 results, from before precision was chosen, keep their names
        fields["precision"] = precision
    return fields


def precision_of(config: ExperimentConfig) -> str:
    """The precision this experiment trains in on this machine (`runtime.precision` resolved for its device
    and model): it changes the numbers, so it is hashed although the rest of `runtime` is not."""
    return resolve_precision(config.runtime.precision, training_device(config.runtime.device), config.model.name)


def _without(fields: dict[str, Any], excluded: dict[str, set[str] | None]) -> dict[str, Any]:
    for key, sub in excluded.items():
        if sub is None:
            fields.pop(key, None)
        else:
            for name in sub:
                fields.get(key, {}).pop(name, None)
    return fields


def result_fields(config: ExperimentConfig) -> dict[str, Any]:
    """The fields that change this experiment's result: not runtime, not what its method never reads."""
    return _without(_hashed_fields(config), _not_read_by(config.method))


def fingerprint(config: ExperimentConfig) -> str:
    """Hash of everything that changes the experiment's result (config and seed)."""
    return _digest(result_fields(config))


def round0_fingerprint(config: ExperimentConfig) -> str:
    """Hash of what round 0 depends on: equal for the prac, lt and random arms of one experiment."""
    return _digest(_without(_hashed_fields(config), _NOT_ROUND0))

