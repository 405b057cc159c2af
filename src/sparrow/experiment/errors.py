"""The one error type of an experiment grid."""

from __future__ import annotations


class ExperimentError(ValueError):
    """A grid cannot be read, expanded or run (bad key, unknown baseline, a run directory made with other
    settings); the message is one line naming the grid entry and what to change."""
