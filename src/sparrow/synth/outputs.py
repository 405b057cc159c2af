"""What a synth job writes besides the frames: ``samples.jsonl``, one JSON array per extra training
format, and the summary. Results arrive in input order; files appear only when complete."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.formats import convert
from sparrow.io import JsonlWriter
from sparrow.jobs import Collector, ItemResult, JobReport, WorkItem
from sparrow.records import Sample


@dataclass
class SynthSummary:
    """What the job did; written to ``summary.json``. Only ``run`` (seconds, frames/s, how many records
    an earlier run had finished) depends on the run; everything else is identical after a resume."""

    inputs: list[str] = field(default_factory=list)  # file names
    records: int = 0  # read from the inputs, bad ones included
    samples: int = 0
    errors: int = 0  # records in errors.jsonl, dropped ones included
    truncated: int = 0  # samples cut to max_frames (--truncate)
    frames: int = 0
    bytes: int = 0  # of the frame images
    missing_glyphs: int = 0  # characters drawn as placeholders,
    missing_glyph_samples: int = 0  # in this many samples
    dropped: dict[str, int] = field(default_factory=dict)  # by filter, before rendering (also errors)
    # Chat turns the chat preset did not use, by kind: "system", "after_first_exchange", "before_user".
    unused_turns: dict[str, int] = field(default_factory=dict)
    # Inputs not read to their end ({"input", "element", "reason"}): what follows is unaccounted for.
    unread: list[dict[str, Any]] = field(default_factory=list)
    # Failed records that have a preset's shape, by preset name (the fix: add --preset NAME).
    looks_like: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def failed(self) -> bool:
        """Nothing useful was made (no sample), or an input could not be read to its end."""
        return self.samples == 0 or bool(self.unread)

    def problem(self) -> str | None:
        """The one line that says why the run failed, and what to do; None when it did not."""
        if not self.failed:
            return None
        if self.unread:
            u = self.unread[0]
            return f"{u['input']}: {u['reason']} ({self.samples} samples made; the rest is unaccounted for)"
        what = (
            f"no sample was made: all {self.records} records failed (errors.jsonl)"
            if self.records
            else ("no sample was made: the inputs hold no records")
        )
        if self.looks_like:
            shape = max(sorted(self.looks_like), key=self.looks_like.__getitem__)
            what += f"; the records look like {shape}: add --preset {shape}"
        return what


class JsonArrayWriter:
    """Stream a JSON array to a temp file and move it into place on close (LLaVA / MiniCPM-V / ShareGPT
    trainers read one JSON array)."""

    def __init__(self, path: Path):
        self.path = path
        fd, self._tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self._f = os.fdopen(fd, "w", encoding="utf-8")
        self._f.write("[")
        self.count = 0

    def write(self, obj: Any) -> None:
        self._f.write(("\n" if self.count == 0 else ",\n") + json.dumps(obj, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self._f.write("\n]\n")
        self._f.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        Path(self._tmp).unlink(missing_ok=True)


class SynthOutputs(Collector):
    """Writes every sample (and its conversions) in input order and counts what went into them."""

    def __init__(self, out: Path, formats: tuple[str, ...], summary: SynthSummary):
        self.formats = formats
        self.summary = summary
        self.rendered = 0  # frames drawn by this run (not loaded from an earlier one)
        self.writers: dict[str, Any] = {"samples": JsonlWriter(out / "samples.jsonl")}
        for fmt in formats:
            self.writers[fmt] = JsonArrayWriter(out / f"{fmt}.json")

    def add(self, item: WorkItem, result: ItemResult) -> int:
        value = result.value or {}
        self.writers["samples"].write(value["sample"])
        if self.formats:
            sample = Sample.from_dict(value["sample"])
            for fmt in self.formats:
                self.writers[fmt].write(convert(sample, fmt))
        s = self.summary
        frames = int(value["frames"])
        s.samples += 1
        s.frames += frames
        s.bytes += int(value["bytes"])
        s.truncated += bool(value["truncated"])
        missing = int(value.get("missing_glyphs", 0))
        s.missing_glyphs += missing
        s.missing_glyph_samples += missing > 0
        self.rendered += 0 if result.skipped else frames
        return frames

    def close(self, report: JobReport) -> SynthSummary:
        for w in self.writers.values():
            w.close()
        s = self.summary
        s.records, s.errors = report.items, report.failed
        s.outputs = {
            "samples": "samples.jsonl",
            **({"errors": "errors.jsonl"} if report.failed else {}),
            "frames": "frames/",
            **{fmt: f"{fmt}.json" for fmt in self.formats},
        }
        seconds = report.seconds
        s.run = {
            "seconds": round(seconds, 3),
            "frames_rendered": self.rendered,
            "frames_per_second": round(self.rendered / seconds, 2) if seconds > 0 else 0.0,
            "resumed_records": report.resumed,
            "workers": report.workers,
            "executor": report.executor,
        }
        return s

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()
