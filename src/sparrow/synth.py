"""Sparrow's text-to-video synthesis: long-context text records become pseudo-video samples.

A record's ``context`` is cut into consecutive frames of at most ``units_per_frame`` units (words, or
tokens of a local tokenizer), preferring paragraph and sentence ends; every frame's text is an exact
slice of the original. Every frame is laid out and measured before it is drawn: text that would not fit
goes to the next frame (so dense text makes more frames), and all of the context appears, in order,
with nothing clipped. The frames become one ``frames`` media item; the question and answer stay text.

Records are read as a stream (JSON arrays, JSONL, Parquet) and rendered through ``sparrow.jobs.run_items``,
so the job is resumable and its outputs are identical for any worker count.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.io import JsonlWriter, LineError, atomic_write_text, iter_jsonl
from sparrow.jobs import ItemResult, WorkItem, prepare_state, run_items
from sparrow.records import FORMATS, IMAGE_TOKEN, VIDEO_TOKEN, Media, RecordError, Sample, convert, qa_sample
from sparrow.render import CJK_RANGES, NO_BREAK_BEFORE, RenderConfig, RenderError, get_renderer, is_cjk

UNITS = ("words", "tokens")
FIELDS = ("context", "question", "answer", "id")
STATE_DIR = ".state"
INPUT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class SynthError(ValueError):
    """The synth job as a whole cannot run (bad input file, bad option)."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the output. Limits follow the paper: at most 100 frames and
    text tokens + 96 x frames <= 10,240 (MiniCPM-V spends 96 visual tokens per frame)."""

    unit: str = "words"
    tokenizer: str | None = None  # local tokenizer directory (unit="tokens"; also counts text tokens)
    units_per_frame: int = 115
    max_frames: int = 100
    max_tokens: int = 10_240
    tokens_per_frame: int = 96
    truncate: bool = False
    fields: tuple[tuple[str, str], ...] = (
        ("answer", "answer"),
        ("context", "context"),
        ("question", "question"),
    )
    source: str | None = None  # the samples' "source"; default: the input file's stem
    render: RenderConfig = field(default_factory=RenderConfig)

    def validate(self) -> None:
        if self.unit not in UNITS:
            raise SynthError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.unit == "tokens" and not self.tokenizer:
            raise SynthError("unit 'tokens' needs a local tokenizer path (--tokenizer DIR)")
        if self.tokenizer and not Path(self.tokenizer).exists():
            raise SynthError(f"tokenizer path not found: {self.tokenizer}")
        if self.units_per_frame < 1:
            raise SynthError("units per frame must be at least 1")
        if self.max_frames < 1 or self.max_tokens < 1 or self.tokens_per_frame < 0:
            raise SynthError("max frames and max tokens must be positive; tokens per frame >= 0")
        try:
            self.render.validate()
        except RenderError as e:
            raise SynthError(str(e)) from e

    def field_map(self) -> dict[str, str]:
        return dict(self.fields)


def parse_fields(spec: str | None) -> tuple[tuple[str, str], ...]:
    """``context=text,question=instruction,answer=output[,id=uid]`` -> field pairs (dotted keys reach into
    nested objects)."""
    mapping = {"context": "context", "question": "question", "answer": "answer"}
    if spec:
        for part in spec.split(","):
            if not part.strip():
                continue
            name, eq, key = part.partition("=")
            name, key = name.strip(), key.strip()
            if not eq or name not in FIELDS or not key:
                raise SynthError(f"--fields entry {part!r} must be NAME=KEY with NAME in {FIELDS}")
            mapping[name] = key
    return tuple(sorted(mapping.items()))


# ------------------------------------------------------------------------------------ segmentation

_CJK_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in CJK_RANGES)
_WORD_RE = re.compile(f"(?!\\s)[{_CJK_CLASS}]|[^\\s{_CJK_CLASS}]+")
_SENTENCE_END = re.compile(r"[.!?。！？…][\"'”’)\]」』）]*$")


def word_units(text: str) -> list[tuple[int, int]]:
    """Spans of words: runs of non-space characters, with each CJK character a word of its own."""
    return [m.span() for m in _WORD_RE.finditer(text)]


_TOKENIZERS: dict[str, Any] = {}


class _FastTokenizer:
    """A ``tokenizer.json`` loaded with the ``tokenizers`` library directly: the same encoder the
    transformers fast tokenizer wraps, without importing transformers (seconds per worker)."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_truncation()  # a saved max_length would silently drop the end of long contexts
        self._tok.no_padding()

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._tok.encode(text, add_special_tokens=False).offsets)

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)


class _HFTokenizer:
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


_TOKENIZERS: dict[str, Any] = {}


def load_tokenizer(path: str) -> Any:
    """A tokenizer from a local directory (or a ``tokenizer.json`` file), loaded once per process and
    never from a hub."""
    tok = _TOKENIZERS.get(path)
    if tok is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        p = Path(path)
        file = p if p.is_file() else p / "tokenizer.json"
        try:
            tok = _FastTokenizer(file) if file.is_file() else _HFTokenizer(p)
        except SynthError:
            raise
        except Exception as e:
            raise SynthError(f"cannot load tokenizer from {path}: {str(e).splitlines()[0]}") from e
        _TOKENIZERS[path] = tok
    return tok


def token_units(text: str, tokenizer: Any) -> list[tuple[int, int]]:
    """Spans of tokens (whitespace trimmed; tokens sharing characters merged so spans never overlap)."""
    spans: list[tuple[int, int]] = []
    for s, e in tokenizer.spans(text):
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s >= e:
            continue
        if spans and s < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((s, e))
    return spans


def count_text_tokens(text: str, tokenizer: Any | None = None) -> int:
    """Tokens of plain text: exact with a tokenizer, else an estimate of 1.3 tokens per word
    (each CJK character counts as a word)."""
    if tokenizer is not None:
        return tokenizer.count(text)
    return math.ceil(1.3 * len(word_units(text)))


def boundary_scores(text: str, units: list[tuple[int, int]]) -> list[int]:
    """How good a cut before unit i is: 3 paragraph break, 2 line break, 1 sentence end, 0 between
    words, -1 inside a word (token units only). Index 0 is unused."""
    scores = [0] * len(units)
    for i in range(1, len(units)):
        prev_s, prev_e = units[i - 1]
        gap = text[prev_e : units[i][0]]
        if gap.count("\n") >= 2 or "\u2029" in gap:
            scores[i] = 3
        elif "\n" in gap or "\u2028" in gap:
            scores[i] = 2
        elif _SENTENCE_END.search(text[prev_s:prev_e]) and (gap or is_cjk(text[prev_e - 1])):
            scores[i] = 1
        elif text[units[i][0]] in NO_BREAK_BEFORE:
            scores[i] = -1  # never start a frame with closing punctuation
        elif gap or is_cjk(text[prev_e - 1]) or is_cjk(text[units[i][0]]):
            scores[i] = 0
        else:
            scores[i] = -1
    return scores


@dataclass
class Frame:
    """One frame's text as a slice [start, end) of the context, and its layout."""

    start: int
    end: int
    layout: Any = field(default=None, repr=False, compare=False)


def fill_frames(
    text: str,
    units: list[tuple[int, int]],
    scores: list[int],
    per_frame: int,
    layout: Callable[[str], Any],
) -> list[Frame]:
    """Cut ``text`` into consecutive frames. Each frame takes at most ``per_frame`` units and no more
    than fits on it (measured with ``layout``, a ``Renderer.layout``); it ends at the best boundary
    (paragraph > line > sentence > word) within the last quarter of what it can take, the latest on
    ties. A unit too long for a whole frame (a huge URL, text without spaces) is cut where the frame
    is full. Frames are exact slices of ``text``; what lies between two frames is whitespace."""
    frames: list[Frame] = []
    ends = [e for _, e in units]
    n, i = len(units), 0
    pos = units[0][0] if units else 0  # where the next frame starts (inside unit i after a cut)
    while i < n:
        start = max(pos, units[i][0])
        j_max = min(n, i + per_frame)
        probe = layout(text[start : ends[j_max - 1]])
        if probe.fits and j_max == n:
            frames.append(Frame(start, ends[n - 1], probe))
            break
        if probe.fits:
            m = j_max - i
        else:
            cut = start + probe.fitting_prefix()
            m = bisect.bisect_right(ends, cut, i, j_max) - i  # whole units that fit
        lay = None
        if m >= 1:
            lo = i + max(1, math.ceil(0.75 * m))
            j = max(range(lo, i + m + 1), key=lambda c: (scores[c] if c < n else 9, c))
            lay = probe.prefix(ends[j - 1] - start) if j < j_max or not probe.fits else probe
            lay = lay if lay is not None else layout(text[start : ends[j - 1]])
            while not lay.fits and j - 1 > i:  # only when a tall glyph shifted the lines: drop units
                j -= 1
                lay = layout(text[start : ends[j - 1]])
        if lay is not None and lay.fits:
            frames.append(Frame(start, ends[j - 1], lay))
            i, pos = j, ends[j - 1]
            continue
        # unit i alone is longer than a frame: fill the frame with its beginning
        cut = start + (probe.fitting_prefix() or 0)
        lay = layout(text[start:cut]) if cut > start else None
        if lay is None or not lay.fits:
            raise RenderError(
                "a frame cannot hold even one line of this text; use a smaller font or a larger frame"
            )
        frames.append(Frame(start, cut, lay))
        pos = cut
        if cut >= ends[i]:
            i += 1
    return frames


# --------------------------------------------------------------------------------------- per record


@dataclass(frozen=True)
class RecordPayload:
    """What a worker needs for one record (picklable)."""

    config: SynthConfig
    out_dir: str
    id: str | None
    fields: dict[str, Any] | None
    source: str  # input file name
    line: int
    label: str  # the sample's "source"
    error: str | None = None  # a problem found while reading (bad JSON, duplicate id)


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


def plan_frames(context: str, config: SynthConfig) -> list[Frame]:
    """Segment a context and split segments until each fits a frame."""
    renderer = get_renderer(config.render)
    if config.unit == "tokens":
        units = token_units(context, load_tokenizer(config.tokenizer or ""))
    else:
        units = word_units(context)
    if not units:
        return []
    scores = boundary_scores(context, units)
    return fill_frames(context, units, scores, config.units_per_frame, renderer.layout)


def process_record(payload: RecordPayload) -> dict[str, Any]:
    """Render one record's frames into its directory and return the sample; raise for a bad record."""
    if payload.error:
        raise RecordError(payload.error)
    cfg = payload.config
    fmap = cfg.field_map()
    fields = payload.fields or {}
    context = _text_field(fields, "context", fmap["context"])
    question = _text_field(fields, "question", fmap["question"])
    answer = _text_field(fields, "answer", fmap["answer"], allow_empty=True)
    for name, value in (("question", question), ("answer", answer)):
        if VIDEO_TOKEN in value or IMAGE_TOKEN in value:
            raise RecordError(f"{name} contains a {VIDEO_TOKEN} or {IMAGE_TOKEN} placeholder")
    renderer = get_renderer(cfg.render)
    reason = renderer.describe_missing(context)
    if reason:
        raise RenderError(reason)

    frames = plan_frames(context, cfg)
    if not frames:
        raise RecordError(f"field {fmap['context']!r} (context) has nothing to render")
    tokenizer = load_tokenizer(cfg.tokenizer) if cfg.tokenizer else None
    text_tokens = count_text_tokens(question, tokenizer) + count_text_tokens(answer, tokenizer)
    if cfg.tokens_per_frame:
        budget_frames = (cfg.max_tokens - text_tokens) // cfg.tokens_per_frame
    else:
        budget_frames = len(frames) if text_tokens <= cfg.max_tokens else 0
    limit = min(cfg.max_frames, budget_frames)
    truncated = False
    if len(frames) > limit:
        why = (
            f"{len(frames)} frames > max frames {cfg.max_frames}"
            if len(frames) > cfg.max_frames
            else f"{text_tokens} text tokens + {cfg.tokens_per_frame} x {len(frames)} frames > max tokens {cfg.max_tokens}"
        )
        if not cfg.truncate or limit < 1:
            raise RecordError(f"over the limit: {why}" + ("" if limit >= 1 else " even with one frame"))
        frames, truncated = frames[:limit], True

    rel_dir = frame_dir(payload.id or "")
    final = Path(payload.out_dir) / rel_dir
    partial = final.parent / f".{final.name}.partial"
    # A kill may have left a partial directory; start this record from scratch so a resumed run ends
    # with exactly the files an uninterrupted one makes.
    for stale in (partial, final):
        if stale.exists():
            shutil.rmtree(stale)
    partial.mkdir(parents=True)
    ext = cfg.render.extension
    nbytes = 0
    paths = []
    for k, fr in enumerate(frames):
        lay = fr.layout if fr.layout is not None else renderer.layout(context[fr.start : fr.end])
        data = renderer.frame_bytes(lay)
        name = f"{k:05d}.{ext}"
        (partial / name).write_bytes(data)
        nbytes += len(data)
        paths.append(f"{rel_dir}/{name}")
    os.replace(partial, final)

    meta: dict[str, Any] = {
        "input": payload.source,
        "line": payload.line,
        "frames": len(frames),
        "context_chars": len(context),
        "rendered_chars": frames[-1].end if truncated else len(context),
        "text_tokens": text_tokens,
        "truncated": truncated,
    }
    sample = qa_sample(
        payload.id or "",
        question,
        answer,
        media=[Media(type="frames", paths=paths)],
        source=payload.label,
        meta=meta,
    )
    sample.validate()
    return {"sample": sample.to_dict(), "frames": len(frames), "bytes": nbytes, "truncated": truncated}


# ------------------------------------------------------------------------------------------ inputs


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


def iter_json_array(path: Path, chunk_chars: int = 1 << 20) -> Iterator[RawRecord]:
    """Stream the elements of a top-level JSON array without loading the file: elements are decoded one
    at a time from a sliding buffer. A syntax error ends the file with one error record."""
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8", errors="replace") as f:
        buf, pos, eof = "", 0, False

        def more(min_chars: int = chunk_chars) -> None:
            nonlocal buf, pos, eof
            data = f.read(max(chunk_chars, min_chars))
            eof = not data
            buf, pos = buf[pos:] + data, 0

        def skip_ws() -> bool:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n\ufeff":
                    pos += 1
                if pos < len(buf) or eof:
                    return pos < len(buf)
                more()

        more()
        if not skip_ws() or buf[pos] != "[":
            yield RawRecord(path, 0, error="not a JSON array (expected '[' at the start)")
            return
        pos += 1
        index = 0
        need_comma = False
        while True:
            if not skip_ws():
                yield RawRecord(path, index + 1, error="unexpected end of file inside the JSON array")
                return
            if buf[pos] == "]":
                pos += 1
                if skip_ws():
                    yield RawRecord(path, index + 1, error="unexpected data after the JSON array")
                return
            if need_comma:
                if buf[pos] != ",":
                    yield RawRecord(path, index + 1, error=f"expected ',' between elements, got {buf[pos]!r}")
                    return
                pos += 1
                need_comma = False
                continue
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as e:
                incomplete = e.pos >= len(buf) - 8 or e.msg.startswith("Unterminated string")
                if incomplete and not eof:
                    more(len(buf))  # the element continues past the buffer: read more (doubling)
                    continue
                yield RawRecord(path, index + 1, error=f"invalid JSON in element {index + 1}: {e.msg}")
                return
            if end >= len(buf) and not eof:
                more(len(buf))  # a value ending exactly at the buffer end may be cut short: re-read
                continue
            pos = end
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
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


# -------------------------------------------------------------------------------------------- job


@dataclass
class SynthSummary:
    """What the job did; written to ``summary.json``. Only ``run`` (seconds, frames/s, how many records
    an earlier run had finished) depends on the run; everything else is identical after a resume."""

    inputs: list[str] = field(default_factory=list)
    records: int = 0
    samples: int = 0
    errors: int = 0
    truncated: int = 0
    frames: int = 0
    bytes: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _JsonArrayWriter:
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


def fingerprint(config: SynthConfig, inputs: list[Path]) -> dict[str, Any]:
    """Settings a resumed run must share with the first one (inputs by path, size and mtime; the
    resolved font files, since another font changes every frame)."""
    from sparrow.render import font_chain

    chain = font_chain(config.render.fonts, include_defaults=config.render.default_fonts)
    return {
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "fonts": [f"{s.path}#{s.index}" for s in chain],
        "inputs": [
            {"path": str(p.resolve()), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
            for p in inputs
        ],
    }


def synthesize(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: SynthConfig | None = None,
    *,
    workers: int = 1,
    formats: tuple[str, ...] = (),
    overwrite: bool = False,
    limit: int | None = None,
    executor: str = "local",
    on_result: Callable[[ItemResult, int], None] | None = None,
) -> SynthSummary:
    """Run the whole job: read ``inputs``, render frames under ``out_dir/frames``, write
    ``samples.jsonl``, ``errors.jsonl``, ``summary.json`` and one JSON file per extra format.

    ``limit`` processes only the first N records (a later run without it resumes the rest).
    ``on_result(result, frames)`` is called after each record (for progress bars)."""
    config = config or SynthConfig()
    config.validate()
    for fmt in formats:
        if fmt not in FORMATS or fmt == "native":
            raise SynthError(f"--format must be one of {[f for f in FORMATS if f != 'native']}, got {fmt!r}")
    paths = [Path(p) for p in inputs]
    if not paths:
        raise SynthError("no input files given")
    for p in paths:
        if not p.is_file():
            raise SynthError(f"input not found: {p}")
        input_kind(p)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SynthError(f"cannot create output directory {out}: {e.strerror}") from e
    if overwrite:
        for sub in (STATE_DIR, "frames"):
            if (out / sub).exists():
                shutil.rmtree(out / sub)
    state = prepare_state(out / STATE_DIR, fingerprint(config, paths))
    # temp files of outputs a killed run was writing (they are only renamed into place when complete)
    for name in ("samples.jsonl", "errors.jsonl", "summary.json", *(f"{f}.json" for f in FORMATS)):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    if config.tokenizer:
        load_tokenizer(config.tokenizer)  # fail fast, before any worker starts
    fmap = config.field_map()
    id_key = fmap.get("id", "id")
    columns = [v.split(".")[0] for v in fmap.values()] + [id_key.split(".")[0]]
    metas: deque[tuple[str | None, str, int]] = deque()

    def items() -> Iterator[WorkItem]:
        seen: dict[str, str] = {}
        taken = 0
        for path in paths:
            label = config.source or path.stem
            for raw in iter_records(path, columns):
                if limit is not None and taken >= limit:
                    return
                taken += 1
                sid, error, fields = None, raw.error, None
                if error is None:
                    if not isinstance(raw.value, dict):
                        error = f"record must be a JSON object, got {type(raw.value).__name__}"
                    else:
                        fields = {name: _get(raw.value, key) for name, key in fmap.items() if name != "id"}
                        rid = _get(raw.value, id_key)
                        if rid is None:
                            sid = f"{path.stem}-{raw.line:06d}"
                        elif isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid).strip():
                            sid = str(rid)
                        else:
                            error = (
                                f"field {fmap.get('id', 'id')!r} (id) must be a non-empty string or integer"
                            )
                if sid is not None:
                    where = f"{path.name}:{raw.line}"
                    if sid in seen:
                        error, sid = f"duplicate id {sid!r} (first at {seen[sid]})", None
                    else:
                        seen[sid] = where
                key = f"id:{sid}" if sid is not None else f"line:{path.resolve()}:{raw.line}"
                metas.append((sid, path.name, raw.line))
                payload = RecordPayload(
                    config=config,
                    out_dir=str(out),
                    id=sid,
                    fields=fields,
                    source=path.name,
                    line=raw.line,
                    label=label,
                    error=error,
                )
                yield WorkItem(key=key, payload=payload)

    summary = SynthSummary(inputs=[p.name for p in paths], settings=fingerprint(config, paths)["config"])
    writers: dict[str, Any] = {}
    resumed = rendered = 0
    start = time.perf_counter()
    try:
        writers["samples"] = JsonlWriter(out / "samples.jsonl")
        writers["errors"] = JsonlWriter(out / "errors.jsonl")
        for fmt in formats:
            writers[fmt] = _JsonArrayWriter(out / f"{fmt}.json")
        for result in run_items(process_record, items(), workers=workers, state_dir=state, executor=executor):
            sid, source, line = metas.popleft()
            summary.records += 1
            resumed += result.skipped
            frames = 0
            if result.ok and result.value is not None:
                sample = Sample.from_dict(result.value["sample"])
                writers["samples"].write(result.value["sample"])
                for fmt in formats:
                    writers[fmt].write(convert(sample, fmt))
                frames = int(result.value["frames"])
                summary.samples += 1
                summary.frames += frames
                rendered += 0 if result.skipped else frames
                summary.bytes += int(result.value["bytes"])
                summary.truncated += bool(result.value["truncated"])
            else:
                summary.errors += 1
                writers["errors"].write({"id": sid, "source": source, "line": line, "reason": result.error})
            if on_result is not None:
                on_result(result, frames)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()
    seconds = time.perf_counter() - start
    summary.run = {
        "seconds": round(seconds, 3),
        "frames_rendered": rendered,
        "frames_per_second": round(rendered / seconds, 2) if seconds > 0 else 0.0,
        "resumed_records": resumed,
        "workers": workers,
    }
    summary.outputs = {
        "samples": "samples.jsonl",
        "errors": "errors.jsonl",
        "frames": "frames/",
        **{fmt: f"{fmt}.json" for fmt in formats},
    }
    atomic_write_text(
        out / "summary.json", json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n"
    )
    return summary
