"""The synth job as a stage of ``sparrow.jobs``: one item per input record.

A worker builds its ``Renderer`` (fonts, glyph caches) and tokenizer once in ``setup()`` and renders
one record per ``process()``; the driver streams the records in, and writes the samples in input order.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Unpack

from sparrow.formats import EXPORT_FORMATS
from sparrow.jobs import JobArgs, JobOptions, Stage, WorkItem, run_job
from sparrow.render import Renderer, font_chain
from sparrow.synth.config import SynthConfig
from sparrow.synth.errors import SynthError
from sparrow.synth.inputs import RawRecord, get_field, input_kind, iter_records, parquet_rows
from sparrow.synth.outputs import SynthOutputs, SynthSummary
from sparrow.synth.presets import PresetError, looks_like, question_too_long
from sparrow.synth.record import RecordPayload, render_record
from sparrow.synth.tokenizers import Tokenizer, load_tokenizer


class SynthStage(Stage):
    """Text records from ``inputs`` -> pseudo-video samples under ``out``."""

    name = "synth"
    unit = "frames"

    def __init__(
        self,
        inputs: list[Path],
        out: Path,
        config: SynthConfig,
        formats: tuple[str, ...] = (),
        limit: int | None = None,
    ):
        self.inputs, self.out, self.config = inputs, out, config
        self.formats, self.limit = formats, limit
        self._renderer: Renderer | None = None
        self._tokenizer: Tokenizer | None = None
        # Records the driver turns away before rendering, by filter (a preset's split, the question
        # length); counted again on every run, since every run reads all records.
        self.dropped: dict[str, int] = {}
        # Chat turns a preset did not use (system turns, turns after the first exchange), by kind.
        self.unused_turns: dict[str, int] = {}
        # Inputs not read to their end: where and why reading stopped (the run then fails).
        self.unread: list[dict[str, Any]] = []
        # Records that failed for want of fields but have the shape of a preset, by preset name.
        self.looks_like: dict[str, int] = {}

    def fingerprint(self) -> dict[str, Any]:
        """Settings a resumed run must share with the first one (inputs by path, size and mtime; the
        resolved font files, since another font changes every frame)."""
        chain = font_chain(self.config.render.fonts, include_defaults=self.config.render.default_fonts)
        return {
            "config": json.loads(json.dumps(asdict(self.config), default=str)),
            "fonts": [f"{s.path}#{s.index}" for s in chain],
            "inputs": [
                {"path": str(p.resolve()), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
                for p in self.inputs
            ],
        }

    def total(self) -> int | None:
        if not all(input_kind(p) == "parquet" for p in self.inputs):
            return None
        rows = [parquet_rows(p) for p in self.inputs]
        if any(r is None for r in rows):
            return None
        total = sum(r for r in rows if r is not None)
        return total if self.limit is None else min(total, self.limit)

    def items(self) -> Iterator[WorkItem]:
        fmap = self.config.field_map()
        preset = self.config.preset
        keys = preset.columns() if preset is not None else [v.split(".")[0] for v in fmap.values()]
        columns = keys + [fmap.get("id", "id").split(".")[0]]
        for counts in (self.dropped, self.unused_turns, self.looks_like):
            counts.clear()
        self.unread.clear()
        seen: dict[str, str] = {}
        taken = 0
        for path in self.inputs:
            for raw in iter_records(path, columns):
                if self.limit is not None and taken >= self.limit:
                    return
                taken += 1
                if raw.fatal:
                    self.unread.append({"input": path.name, "element": raw.line, "reason": raw.error})
                yield self._item(raw, seen)

    def _item(self, raw: RawRecord, seen: dict[str, str]) -> WorkItem:
        """A record as a work item: its id (given, or ``<stem>-<line>``), or the reason it is bad."""
        fmap = self.config.field_map()
        path = raw.source
        sid, error, fields = None, raw.error, None
        if error is None:
            if not isinstance(raw.value, dict):
                error = f"record must be a JSON object, got {type(raw.value).__name__}"
            else:
                rid = get_field(raw.value, fmap.get("id", "id"))
                if rid is None:
                    sid = f"{path.stem}-{raw.line:06d}"
                elif isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid).strip():
                    sid = str(rid)
                else:
                    error = f"field {fmap.get('id', 'id')!r} (id) must be a non-empty string or integer"
                if error is None:
                    fields, error = self._fields(raw.value)
        if sid is not None:
            if sid in seen:
                error, sid = f"duplicate id {sid!r} (first at {seen[sid]})", None
            else:
                seen[sid] = f"{path.name}:{raw.line}"
        key = f"id:{sid}" if sid is not None else f"line:{path.resolve()}:{raw.line}"
        payload = None
        if error is None and sid is not None and fields is not None:
            label = self.config.source or path.stem
            payload = RecordPayload(id=sid, fields=fields, source=path.name, line=raw.line, label=label)
        return WorkItem(key=key, payload=payload, id=sid, line=raw.line, source=path.name, error=error)

    def _fields(self, value: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The record's context, question and answer (by preset or field map), or why it is dropped."""
        preset = self.config.preset
        if preset is None:
            fmap = self.config.field_map()
            fields = {name: get_field(value, key) for name, key in fmap.items() if name != "id"}
            missing = [fmap[name] for name in ("context", "question") if fields.get(name) is None]
            shape = looks_like(value) if missing else None
            if shape is not None:
                self.looks_like[shape] = self.looks_like.get(shape, 0) + 1
                return (
                    None,
                    f"missing field {missing[0]!r}; the record looks like {shape}: add --preset {shape}",
                )
        else:
            try:
                split = preset.extract(value)
            except PresetError as e:
                self.dropped["preset"] = self.dropped.get("preset", 0) + 1
                shape = looks_like(value)
                if shape is not None and shape != preset.name:
                    self.looks_like[shape] = self.looks_like.get(shape, 0) + 1
                    return (
                        None,
                        f"{preset.name} preset: {e}; the record looks like {shape}: use --preset {shape}",
                    )
                return None, f"{preset.name} preset: {e}"
            fields = split.fields()
            for kind, n in split.unused.items():
                self.unused_turns[kind] = self.unused_turns.get(kind, 0) + n
        too_long = question_too_long(fields.get("question"), self.config.question_word_limit())
        if too_long is not None:
            self.dropped["question_words"] = self.dropped.get("question_words", 0) + 1
            return None, too_long
        return fields, None

    def setup(self) -> None:
        self._renderer = Renderer(self.config.render)
        self._tokenizer = load_tokenizer(self.config.tokenizer) if self.config.tokenizer else None

    def process(self, payload: RecordPayload) -> dict[str, Any]:
        assert self._renderer is not None, "process() before setup()"
        return render_record(payload, self.config, self.out, self._renderer, self._tokenizer)

    def collector(self, out: Path) -> SynthOutputs:
        summary = SynthSummary(
            inputs=[p.name for p in self.inputs],
            settings=self.fingerprint()["config"],
            dropped=self.dropped,
            unused_turns=self.unused_turns,
            unread=self.unread,
            looks_like=self.looks_like,
        )
        return SynthOutputs(out, self.formats, summary)

    def discard(self, out: Path) -> None:
        if (out / "frames").exists():
            shutil.rmtree(out / "frames")


def synthesize(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: SynthConfig | None = None,
    *,
    formats: tuple[str, ...] = (),
    limit: int | None = None,
    **job: Unpack[JobArgs],
) -> SynthSummary:
    """Run the whole job: read ``inputs``, render frames under ``out_dir/frames``, write
    ``samples.jsonl``, ``summary.json``, one JSON file per extra format and, when a record failed,
    ``errors.jsonl``.

    ``limit`` processes only the first N records (a later run without it resumes the rest). ``job``:
    workers, executor, overwrite and ``on_progress(JobEvent)``, called after each record (for progress
    bars)."""
    config = config or SynthConfig()
    config.validate()
    for fmt in formats:
        if fmt not in EXPORT_FORMATS:
            raise SynthError(f"--format must be one of {list(EXPORT_FORMATS)}, got {fmt!r}")
    paths = [Path(p) for p in inputs]
    if not paths:
        raise SynthError("no input files given")
    for p in paths:
        if not p.is_file():
            raise SynthError(f"input not found: {p}")
        input_kind(p)
    if config.tokenizer:
        load_tokenizer(config.tokenizer)  # fail fast, before any worker starts
    stage = SynthStage(paths, Path(out_dir), config, formats=formats, limit=limit)
    return run_job(stage, out_dir, JobOptions(**job))
