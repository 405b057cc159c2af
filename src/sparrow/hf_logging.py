"""Hugging Face's console output, kept quiet: the library never prints, not even a loading bar."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """Silence transformers' progress bars while loading / saving / converting."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
