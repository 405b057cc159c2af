"""Reading YAML configs (model configs, recipes, world settings) with one-line errors."""

from __future__ import annotations

import dataclasses
import os
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
