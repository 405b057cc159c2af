"""The typed errors of evaluation and curation; each message is one line a user can act on."""

from __future__ import annotations


class EvalError(ValueError):
    """An evaluation cannot run (bad flags, unreadable benchmark or checkpoint)."""


class CurateError(ValueError):
    """Curation inputs cannot be read or do not fit together; the message says which and why."""
