"""The model config's error, in a module of its own so that ``config.py`` and the modules below it
(``packaged_specs.py``) can share it without importing each other."""

from __future__ import annotations


class ConfigError(ValueError):
    """A model config is malformed; the message names the field."""
