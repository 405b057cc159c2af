"""Files that are safe to read while a job writes them: atomic writes and streaming JSONL.

No record schema here: jobs, the trainer and reports write their files through this module without
importing what a sample is.
"""

from __future__ import annotations

import filecmp
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class LineError:
    """A line of an input file that could not be read as a record."""

    source: str
    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any | LineError]]:
    """Stream ``(line_number, object_or_LineError)`` from a JSONL file; blank lines are skipped.
    Line numbers are 1-based. Memory stays flat whatever the file size."""
    path = Path(path)
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                yield lineno, LineError(str(path), lineno, f"invalid JSON: {e.msg} (column {e.colno})")


def _umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file; mkstemp's 0600 would make outputs owner-only."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _replace_if_changed(tmp: str, path: Path) -> None:
    """Move ``tmp`` onto ``path`` unless ``path`` already holds the same bytes. Leaving an unchanged file
    alone keeps its mtime, so a re-run of one step does not look like new input to the next one."""
    if path.is_file() and filecmp.cmp(tmp, path, shallow=False):
        Path(tmp).unlink()
        return
    os.chmod(tmp, _umask_mode())
    os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _replace_if_changed(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JsonlWriter:
    """Write JSON lines to a temp file and move it into place on close, so an interrupted job never
    leaves a half-written output that looks complete."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self._f = os.fdopen(fd, "w", encoding="utf-8")
        self.count = 0

    def write(self, obj: Any) -> None:
        if hasattr(obj, "to_dict"):
            obj = obj.to_dict()
        self._f.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._f.closed:
            return
        self._f.close()
        _replace_if_changed(self._tmp, self.path)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_jsonl(path: str | os.PathLike, objs: Iterable[Any]) -> int:
    with JsonlWriter(path) as w:
        for o in objs:
            w.write(o)
        return w.count
