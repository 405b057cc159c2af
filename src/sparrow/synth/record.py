"""One record to one sample: read its fields, plan its frames within the limits, draw them into the
record's own directory (atomically, so a resumed run never sees half a record) and build the sample."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.records import IMAGE_TOKEN, VIDEO_TOKEN, Media, RecordError, qa_sample
from sparrow.render import Renderer, RenderError
from sparrow.synth.config import SynthConfig
from sparrow.synth.segment import Frame, plan_frames
from sparrow.synth.tokenizers import Tokenizer
from sparrow.synth.units import count_text_tokens


@dataclass(frozen=True)
class RecordPayload:
    """What a worker needs for one record (picklable; the settings travel with the stage)."""

    id: str
    fields: dict[str, Any]
    source: str  # input file name
    line: int
    label: str  # the sample's "source"


def safe_dir_name(sample_id: str) -> str:
    """A filesystem-safe directory name for an id; ids that needed changes get a hash suffix so two
    different ids never share a directory."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", sample_id)[:80].lstrip(".") or "_"
    if safe != sample_id:
        safe += "-" + hashlib.sha1(sample_id.encode("utf-8")).hexdigest()[:8]
    return safe


def frame_dir(sample_id: str) -> str:
    """``frames/<2-char shard>/<safe id>`` (relative to the output directory)."""
    shard = hashlib.sha1(sample_id.encode("utf-8")).hexdigest()[:2]
    return f"frames/{shard}/{safe_dir_name(sample_id)}"


def _text_field(fields: dict[str, Any], name: str, key: str, allow_empty: bool = False) -> str:
    value = fields.get(name)
    if value is None:
        raise RecordError(f"missing field {key!r} ({name})")
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} ({name}) must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(f"field {key!r} ({name}) is empty")
    return value


def _read_fields(payload: RecordPayload, cfg: SynthConfig) -> tuple[str, str, str]:
    fmap = cfg.field_map()
    context = _text_field(payload.fields, "context", fmap["context"])
    question = _text_field(payload.fields, "question", fmap["question"])
    answer = _text_field(payload.fields, "answer", fmap["answer"], allow_empty=True)
    for name, value in (("question", question), ("answer", answer)):
        if VIDEO_TOKEN in value or IMAGE_TOKEN in value:
            raise RecordError(f"{name} contains a {VIDEO_TOKEN} or {IMAGE_TOKEN} placeholder")
    return context, question, answer


def _apply_limits(frames: list[Frame], text_tokens: int, cfg: SynthConfig) -> tuple[list[Frame], bool]:
    """The frames kept under ``max_frames`` and the token budget, and whether some were cut off;
    raise when over a limit without ``truncate``."""
    if cfg.tokens_per_frame:
        budget_frames = (cfg.max_tokens - text_tokens) // cfg.tokens_per_frame
    else:
        budget_frames = len(frames) if text_tokens <= cfg.max_tokens else 0
    limit = min(cfg.max_frames, budget_frames)
    if len(frames) <= limit:
        return frames, False
    why = (
        f"{len(frames)} frames > max frames {cfg.max_frames}"
        if len(frames) > cfg.max_frames
        else f"{text_tokens} text tokens + {cfg.tokens_per_frame} x {len(frames)} frames > max tokens {cfg.max_tokens}"
    )
    if not cfg.truncate or limit < 1:
        raise RecordError(f"over the limit: {why}" + ("" if limit >= 1 else " even with one frame"))
    return frames[:limit], True


def _write_frames(
    frames: list[Frame], context: str, rel_dir: str, out_dir: Path, renderer: Renderer, ext: str
) -> tuple[list[str], int]:
    """Draw the frames into ``rel_dir``; return their relative paths and total bytes."""
    final = out_dir / rel_dir
    partial = final.parent / f".{final.name}.partial"
    # A kill may have left a partial directory; start this record from scratch so a resumed run ends
    # with exactly the files an uninterrupted one makes.
    for stale in (partial, final):
        if stale.exists():
            shutil.rmtree(stale)
    partial.mkdir(parents=True)
    nbytes, paths = 0, []
    for k, fr in enumerate(frames):
        lay = fr.layout if fr.layout is not None else renderer.layout(context[fr.start : fr.end])
        data = renderer.frame_bytes(lay)
        name = f"{k:05d}.{ext}"
        (partial / name).write_bytes(data)
        nbytes += len(data)
        paths.append(f"{rel_dir}/{name}")
    os.replace(partial, final)
    return paths, nbytes


def render_record(
    payload: RecordPayload,
    cfg: SynthConfig,
    out_dir: Path,
    renderer: Renderer,
    tokenizer: Tokenizer | None,
) -> dict[str, Any]:
    """Render one record's frames into its directory and return the sample; raise for a bad record."""
    context, question, answer = _read_fields(payload, cfg)
    missing = renderer.missing_glyphs(context)
    if missing and cfg.render.missing_glyphs == "error":
        raise RenderError(renderer.describe_missing(context) or "a character no font can draw")
    frames = plan_frames(context, cfg, renderer, tokenizer)
    if not frames:
        raise RecordError(f"field {cfg.field_map()['context']!r} (context) has nothing to render")
    text_tokens = count_text_tokens(question, tokenizer) + count_text_tokens(answer, tokenizer)
    frames, truncated = _apply_limits(frames, text_tokens, cfg)
    paths, nbytes = _write_frames(
        frames, context, frame_dir(payload.id), out_dir, renderer, cfg.render.extension
    )
    rendered = frames[-1].end if truncated else len(context)
    meta: dict[str, Any] = {
        "input": payload.source,
        "line": payload.line,
        "frames": len(frames),
        "context_chars": len(context),
        "rendered_chars": rendered,
        "text_tokens": text_tokens,
        "truncated": truncated,
    }
    # Characters drawn as placeholders (policy "replace"); absent when every character was drawn.
    placeholders = sum(context.count(ch, 0, rendered) for _, ch in missing)
    if placeholders:
        meta["missing_glyphs"] = placeholders
    sample = qa_sample(
        payload.id,
        question,
        answer,
        media=[Media(type="frames", paths=paths)],
        source=payload.label,
        meta=meta,
    )
    sample.validate()
    return {
        "sample": sample.to_dict(),
        "frames": len(frames),
        "bytes": nbytes,
        "truncated": truncated,
        "missing_glyphs": placeholders,
    }
