"""The typed errors of caption refinement; each message is one line a user can act on."""

from __future__ import annotations


class RefineError(ValueError):
    """A refinement run cannot start (bad transcripts file, missing videos folder, bad settings)."""


class CaptionsError(ValueError):
    """A caption file cannot be read at all (missing, not JSON, not an object of videos)."""


class PromptError(ValueError):
    """A template or an examples file cannot be used."""
