"""`--set key=value` overrides: dotted paths (train.epochs) or unique leaf names (epochs), validated."""
from __future__ import annotations

import json
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from prac.settings.config import REMOVED_SETTINGS, ExperimentConfig
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


def _text_fields(model: type[BaseModel], prefix: str = "") -> dict[str, bool]:
    """Paths of plain-string fields (names, paths) -> whether None is allowed. Their values are taken
    verbatim, so `--output-dir 2024` or `--set data_dir=true` stay strings instead of JSON numbers/bools."""
    fields: dict[str, bool] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields.update(_text_fields(annotation, f"{prefix}{name}."))
        elif annotation is str:
            fields[f"{prefix}{name}"] = False
        elif get_origin(annotation) in (Union, types.UnionType) and set(get_args(annotation)) == {str, type(None)}:
            fields[f"{prefix}{name}"] = True
    return fields


TEXT_FIELDS = _text_fields(ExperimentConfig)


def resolve_key(key: str) -> str:
    """A full dotted path for `key`: itself if it is one, else the unique path ending in it."""
    if key in LEAF_PATHS:
        return key
    removed = [why for path, why in REMOVED_SETTINGS.items() if key in (path, path.rsplit(".", 1)[-1])]
    if removed:
        raise UserError(removed[0])
    matches = [p for p in LEAF_PATHS if p.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"ambiguous --set key '{key}': say one of {', '.join(matches)}")
    raise UserError(f"unknown --set key '{key}' (known: {', '.join(LEAF_PATHS)})")


def _parse_value(text: str) -> Any:
    # JSON for numbers, booleans, lists and null; anything else is a plain string.
    # "none" stays a string: it is a valid choice of some fields (evaluate_tickets=none); null is JSON null.
    lowered = {"true": "true", "false": "false", "null": "null"}.get(text.lower(), text)
    try:
        return json.loads(lowered)
    except json.JSONDecodeError:
        return text


def parse_assignment(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value, got '{item}'")
    path, text = resolve_key(key.strip()), value.strip()
    if path in TEXT_FIELDS and not (TEXT_FIELDS[path] and text.lower() == "null"):
        return path, text
    return path, _parse_value(text)


def apply_overrides(config: ExperimentConfig, items: list[str], values: dict[str, Any] | None = None
                    ) -> ExperimentConfig:
    """`config` with `values` (dotted path -> value, taken as it is) set, then the `key=value` texts of `items`."""
    data = config.model_dump()
    for path, value in [*(values or {}).items(), *map(parse_assignment, items)]:
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise UserError(f"invalid configuration: {validation_problems(error)}") from None


def validation_problems(error: ValidationError) -> str:
    """A config's validation errors on one line: `path: message; ...`."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors())
