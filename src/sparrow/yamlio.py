"""Reading YAML configs (model configs, recipes, world settings) with one-line errors."""

from __future__ import annotations

import os
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
