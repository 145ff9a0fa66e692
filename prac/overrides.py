"""`--set key=value` overrides: dotted paths (train.epochs) or unique leaf names (epochs), validated."""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from prac.config import ExperimentConfig
from prac.errors import UserError


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += _leaf_paths(annotation, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


LEAF_PATHS = _leaf_paths(ExperimentConfig)


def resolve_key(key: str) -> str:
    """A full dotted path for `key`: itself if it is one, else the unique path ending in it."""
    if key in LEAF_PATHS:
        return key
    matches = [p for p in LEAF_PATHS if p.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"ambiguous --set key '{key}': say one of {', '.join(matches)}")
    raise UserError(f"unknown --set key '{key}' (known: {', '.join(LEAF_PATHS)})")


def _parse_value(text: str) -> Any:
    # JSON for numbers, booleans, lists and null; anything else is a plain string.
    lowered = {"true": "true", "false": "false", "none": "null", "null": "null"}.get(text.lower(), text)
    try:
        return json.loads(lowered)
    except json.JSONDecodeError:
        return text


def parse_assignment(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value, got '{item}'")
    return resolve_key(key.strip()), _parse_value(value.strip())


def apply_overrides(config: ExperimentConfig, items: list[str]) -> ExperimentConfig:
    data = config.model_dump()
    for item in items:
        path, value = parse_assignment(item)
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors()
        )
        raise UserError(f"invalid configuration: {problems}") from None
