"""One module per ``sparrow`` subcommand; each defines ``register(app)``."""

from __future__ import annotations

import dataclasses
from typing import Any


def default(config: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``config``: option defaults come from the config
    dataclasses, so the command line and the library cannot drift apart."""
    for f in dataclasses.fields(config):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise KeyError(f"{config.__name__} has no field {name!r} with a default")
