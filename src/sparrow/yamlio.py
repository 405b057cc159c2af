"""Reading YAML configs (model configs, recipes, world settings) with one-line errors."""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def load_yaml(path: str | os.PathLike, what: str, error: type[Exception] = ValueError) -> Any:
    """Parse the YAML file at ``path``; unreadable or invalid files raise ``error`` naming ``what``."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise error(f"cannot read {what} {str(path)!r}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise error(f"{what} {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from e


def unknown_keys(d: Mapping[str, Any], config: Any) -> tuple[list[str], list[str]]:
    """The keys of ``d`` that are not fields of the dataclass ``config`` (a class or an instance) and the
    known field names, both sorted, for a config error that lists what is allowed."""
    known = sorted(f.name for f in dataclasses.fields(config))
    return sorted(set(d) - set(known)), known


def check_mapping(value: Any, config: type, error: type[Exception], where: str) -> dict[str, Any]:
    """``value`` as keyword arguments of the dataclass ``config``: a mapping of its field names, copied;
    anything else raises ``error`` naming ``where``."""
    if not isinstance(value, dict):
        raise error(f"{where} must be a mapping, got {type(value).__name__}")
    unknown, known = unknown_keys(value, config)
    if unknown:
        raise error(f"{where}: unknown key(s) {unknown}; known: {known}")
    return dict(value)


def typed_value(config: type, key: str, text: str) -> Any:
    """``text`` parsed as the dataclass field ``key`` is typed: ``none`` / ``null`` for an optional
    field, booleans as 1/true/yes/on, then int, float, else the text itself (literals, paths)."""
    hint = typing.get_type_hints(config)[key]
    args = set(typing.get_args(hint)) or {hint}
    if text.lower() in ("none", "null") and type(None) in args:
        return None
    if bool in args:
        return text.lower() in ("1", "true", "yes", "on")
    if int in args:
        return int(text)
    if float in args:
        return float(text)
    return text


def apply_overrides(base: Any, text: str | None, what: str, keys: typing.Iterable[str] | None = None) -> Any:
    """``"key=value,key=value"`` applied over the dataclass instance ``base`` (``keys``: the fields that
    may be set, default all), each value typed like its field; a bad part raises ValueError."""
    if not text:
        return base
    known = set(keys) if keys is not None else {f.name for f in dataclasses.fields(base)}
    changes: dict[str, Any] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in known:
            raise ValueError(f"bad {what} override {part!r}; use key=value with keys {sorted(known)}")
        changes[key] = typed_value(type(base), key, value)
    return dataclasses.replace(base, **changes)
