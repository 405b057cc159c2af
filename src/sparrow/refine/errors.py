"""The typed errors of caption refinement; each message is one line a user can act on."""

from __future__ import annotations


class RefineError(ValueError):
    """A refinement run cannot start (bad transcripts file, missing videos folder, bad settings)."""


class PromptError(ValueError):
    """A template or an examples file cannot be used."""
