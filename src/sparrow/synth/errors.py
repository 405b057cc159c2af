"""The synth job's typed errors; each message is one line a user can act on."""

from __future__ import annotations


class SynthError(ValueError):
    """The synth job as a whole cannot run (bad input file, bad option)."""
