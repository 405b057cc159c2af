"""Streaming readers for synth inputs: JSON arrays, JSON lines and Parquet, and dotted field access.

Every reader yields :class:`RawRecord` one at a time, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.io import LineError, iter_jsonl
from sparrow.synth.config import SynthError

INPUT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class RawRecord:
    """One input record (or a reading problem) with where it came from."""

    source: Path
    line: int  # JSONL line, JSON array element or Parquet row; 1-based
    value: Any = None
    error: str | None = None


def input_kind(path: Path) -> str:
    kind = INPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SynthError(f"{path}: unknown input type; use .jsonl, .json (array) or .parquet")
    if kind == "json":
        # A .json file that is not an array is read as JSON lines.
        with path.open("r", encoding="utf-8", errors="replace") as f:
            head = f.read(4096).lstrip("\ufeff \t\r\n")
        kind = "json" if head.startswith("[") else "jsonl"
    return kind


class _Buffer:
    """A sliding window over a text file for decoding one JSON value at a time."""

    def __init__(self, f: Any, chunk_chars: int):
        self.f, self.chunk = f, chunk_chars
        self.buf, self.pos, self.eof = "", 0, False
        self.more()

    def more(self, min_chars: int = 0) -> None:
        data = self.f.read(max(self.chunk, min_chars))
        self.eof = not data
        self.buf, self.pos = self.buf[self.pos :] + data, 0

    def skip_ws(self) -> bool:
        """Skip whitespace; False at the end of the file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.pos < len(self.buf)
            self.more()

    def peek(self) -> str:
        return self.buf[self.pos]


def iter_json_array(path: Path, chunk_chars: int = 1 << 20) -> Iterator[RawRecord]:
    """Stream the elements of a top-level JSON array without loading the file: elements are decoded one
    at a time from a sliding buffer. A syntax error ends the file with one error record."""
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8", errors="replace") as f:
        b = _Buffer(f, chunk_chars)
        if not b.skip_ws() or b.peek() != "[":
            yield RawRecord(path, 0, error="not a JSON array (expected '[' at the start)")
            return
        b.pos += 1
        index = 0
        need_comma = False
        while True:
            if not b.skip_ws():
                yield RawRecord(path, index + 1, error="unexpected end of file inside the JSON array")
                return
            if b.peek() == "]":
                b.pos += 1
                if b.skip_ws():
                    yield RawRecord(path, index + 1, error="unexpected data after the JSON array")
                return
            if need_comma:
                if b.peek() != ",":
                    yield RawRecord(path, index + 1, error=f"expected ',' between elements, got {b.peek()!r}")
                    return
                b.pos += 1
                need_comma = False
                continue
            try:
                value, end = decoder.raw_decode(b.buf, b.pos)
            except json.JSONDecodeError as e:
                incomplete = e.pos >= len(b.buf) - 8 or e.msg.startswith("Unterminated string")
                if incomplete and not b.eof:
                    b.more(len(b.buf))  # the element continues past the buffer: read more (doubling)
                    continue
                yield RawRecord(path, index + 1, error=f"invalid JSON in element {index + 1}: {e.msg}")
                return
            if end >= len(b.buf) and not b.eof:
                b.more(len(b.buf))  # a value ending exactly at the buffer end may be cut short: re-read
                continue
            b.pos = end
            index += 1
            need_comma = True
            yield RawRecord(path, index, value=value)


def iter_parquet(path: Path, columns: list[str], batch_rows: int = 256) -> Iterator[RawRecord]:
    """Stream Parquet rows in small batches, reading only the needed columns."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise SynthError(f"{path}: cannot read Parquet: {e}") from e
    names = set(pf.schema_arrow.names)
    wanted = [c for c in dict.fromkeys(columns) if c in names]
    row = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted):
        for value in batch.to_pylist():
            row += 1
            yield RawRecord(path, row, value=value)


def iter_records(path: Path, columns: list[str]) -> Iterator[RawRecord]:
    """Records of one input file, streamed, whatever its layout."""
    if not path.is_file():
        raise SynthError(f"input not found: {path}")
    kind = input_kind(path)
    if kind == "parquet":
        yield from iter_parquet(path, columns)
    elif kind == "json":
        yield from iter_json_array(path)
    else:
        for lineno, obj in iter_jsonl(path):
            if isinstance(obj, LineError):
                yield RawRecord(path, lineno, error=obj.reason)
            else:
                yield RawRecord(path, lineno, value=obj)


def parquet_rows(path: Path) -> int | None:
    """Rows of a Parquet file from its footer, or None when it cannot be read."""
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None


def get_field(obj: Any, dotted: str) -> Any:
    """``obj["a"]["b"]`` for ``"a.b"``; None where a level is missing or not an object."""
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj
