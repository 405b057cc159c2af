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
from sparrow.synth.errors import SynthError

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
    # True when reading stopped here: the rest of the file could not be parsed and is unaccounted for.
    fatal: bool = False


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


_REST = "the rest of the file was not read"
_UNREAD = "the JSON array cannot be parsed past element {0}: the file ends before its closing ']'"


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

    def skip_element(self) -> bool:
        """Move past one malformed element, to the next ``,`` or ``]`` outside strings and brackets, so
        the elements after it are still read. A raw newline ends a string (JSON strings cannot hold
        one), so one unterminated string costs one element, not the rest of the file. False at the end
        of the file: nothing after the element could be found."""
        depth, in_str, escaped = 0, False, False
        i = self.pos
        while True:
            if i >= len(self.buf):
                if self.eof:
                    self.pos = i
                    return False
                self.pos = i  # what was scanned is not needed again: keep the buffer small
                self.more()
                i = 0
                continue
            c = self.buf[i]
            if in_str:
                if escaped:
                    escaped = False
                elif c == "\\":
                    escaped = True
                elif c in '"\n':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c in "[{":
                depth += 1
            elif c in "]}" and depth > 0:
                depth -= 1
            elif c in ",]" and depth == 0:
                self.pos = i
                return True
            i += 1


def iter_json_array(path: Path, chunk_chars: int = 1 << 20) -> Iterator[RawRecord]:
    """Stream the elements of a top-level JSON array without loading the file: elements are decoded one
    at a time from a sliding buffer. A malformed element becomes one error record and reading goes on
    after it; where the array cannot be parsed past a point (a truncated file, data after the array),
    the last record is ``fatal``: it says so, and the rest of the file is unread."""
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8", errors="replace") as f:
        b = _Buffer(f, chunk_chars)
        if not b.skip_ws() or b.peek() != "[":
            yield RawRecord(path, 0, error="not a JSON array (expected '[' at the start)", fatal=True)
            return
        b.pos += 1
        index = 0
        need_comma = False
        while True:
            if not b.skip_ws():
                yield RawRecord(path, index + 1, error=_UNREAD.format(index), fatal=True)
                return
            if b.peek() == "]":
                b.pos += 1
                if b.skip_ws():
                    yield RawRecord(
                        path, index + 1, error=f"unexpected data after the JSON array: {_REST}", fatal=True
                    )
                return
            if need_comma:
                need_comma = False
                if b.peek() == ",":
                    b.pos += 1
                    continue
                index += 1  # a missing comma: the element after it is skipped and reported
                yield RawRecord(path, index, error=f"expected ',' before element {index}; element skipped")
                if not b.skip_element():
                    yield RawRecord(path, index + 1, error=_UNREAD.format(index), fatal=True)
                    return
                need_comma = True
                continue
            try:
                value, end = decoder.raw_decode(b.buf, b.pos)
            except json.JSONDecodeError as e:
                incomplete = e.pos >= len(b.buf) - 8 or e.msg.startswith("Unterminated string")
                if incomplete and not b.eof:
                    b.more(len(b.buf))  # the element continues past the buffer: read more (doubling)
                    continue
                index += 1
                yield RawRecord(path, index, error=f"invalid JSON in element {index}: {e.msg}")
                if not b.skip_element():
                    yield RawRecord(path, index + 1, error=_UNREAD.format(index), fatal=True)
                    return
                need_comma = True
                continue
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
