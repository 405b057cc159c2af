"""Local tokenizers for token units and exact text-token counts: loaded from disk, never from a hub.

A loaded tokenizer is per-worker state: the synth stage loads it in ``setup()`` and keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sparrow.synth.errors import SynthError


class Tokenizer(Protocol):
    def spans(self, text: str) -> list[tuple[int, int]]: ...

    def count(self, text: str) -> int: ...


class _FastTokenizer:
    """A ``tokenizer.json`` loaded with the ``tokenizers`` library directly: the same encoder the
    transformers fast tokenizer wraps, without importing transformers (seconds per worker)."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as HFTokenizer

        self._tok = HFTokenizer.from_file(str(path))
        self._tok.no_truncation()  # a saved max_length would silently drop the end of long contexts
        self._tok.no_padding()

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._tok.encode(text, add_special_tokens=False).offsets)

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)


class _AutoTokenizer:
    """Any other local tokenizer through transformers' AutoTokenizer (must be a fast one: offsets)."""

    def __init__(self, path: Path):
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if not getattr(self._tok, "is_fast", False):
            raise SynthError(f"tokenizer at {path} is not a fast tokenizer; character offsets are needed")

    def spans(self, text: str) -> list[tuple[int, int]]:
        enc = self._tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(x) for x in enc["offset_mapping"]]

    def count(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False, verbose=False)["input_ids"])


def load_tokenizer(path: str) -> Tokenizer:
    """A tokenizer from a local directory (or a ``tokenizer.json`` file)."""
    p = Path(path)
    file = p if p.is_file() else p / "tokenizer.json"
    try:
        return _FastTokenizer(file) if file.is_file() else _AutoTokenizer(p)
    except SynthError:
        raise
    except Exception as e:
        raise SynthError(f"cannot load tokenizer from {path}: {str(e).splitlines()[0]}") from e
