"""Generate the whole world into a directory (layout in docs/world.md and docs/architecture.md).

Plan every scene in this process (cheap, deterministic), render + encode the videos as one job item
per video as a stage of :mod:`sparrow.jobs` (parallel, resumable), then derive questions,
records, benchmarks, transcripts and the text corpus from the plans. Everything is a function of
(config, seed): the same settings give byte-identical files for any worker count and after a resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.io import atomic_write_text, write_jsonl
from sparrow.jobs import Collector, ItemResult, JobEvent, JobOptions, JobReport, Stage, WorkItem, run_job
from sparrow.mcq import format_mcq_answer, format_mcq_prompt, option_letter
from sparrow.records import Media, Sample
from sparrow.world.config import CATEGORIES, SPLITS, WorldConfig, WorldError, preset_config
from sparrow.world.corpus import corpus_rows
from sparrow.world.frame_captions import frame_caption_records
from sparrow.world.phrasing import phrase
from sparrow.world.questions import Draft, Question, draft_questions, finalize
from sparrow.world.scene import Scene, plan_scene
from sparrow.world.transcripts import caption_lines, ground_truth, noisy_transcript
from sparrow.world.video_writer import encode_scene, measure_text

VERSION = 1


@dataclass
class WorldSummary:
    out: Path
    videos: int = 0
    rendered: int = 0
    resumed: int = 0
    failed: int = 0
    frames: int = 0
    questions: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    captions: int = 0
    text_records: int = 0
    corpus_rows: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out)}


# ------------------------------------------------------------------------------------------- planning


def plan_world(cfg: WorldConfig) -> list[Scene]:
    """All scenes, split by split (``<split>-<index>``); which ones are long is drawn per split."""
    scenes = []
    for split in SPLITS:
        n, n_long = cfg.videos.get(split, 0), cfg.long_videos.get(split, 0)
        long_ids = set(random.Random(f"sparrow-world/long/{cfg.seed}/{split}").sample(range(n), n_long))
        for i in range(n):
            scenes.append(plan_scene(f"{split}-{i:04d}", split, i in long_ids, cfg, cfg.seed, measure_text))
    return scenes


def _balanced_positions(rng: random.Random, n: int) -> list[int]:
    """Answer positions: each block of four is a permutation of A-D, so letters are balanced ±1."""
    out: list[int] = []
    while len(out) < n:
        out += rng.sample(range(4), 4)
    return out[:n]


def _text_flags(rng: random.Random, n: int, rate: float) -> list[bool]:
    """Exactly round(rate * n) questions, chosen at random, get the text-answerable bias."""
    chosen = set(rng.sample(range(n), round(rate * n)))
    return [i in chosen for i in range(n)]


# Question types whose answers are values with a natural frequency (counts, seconds, speeds): their
# answers are balanced per split so that a text-only model cannot win by guessing the common value.
BALANCED_SUBTYPES = ("count_shapes", "count_words", "word_seconds", "still_seconds", "speed_of_shape")


def _balance(drafts: list[tuple[Scene, int, Draft]]) -> list[tuple[Scene, int, Draft]]:
    """Flatten the answer distribution of each balanced question type (separately for short and long
    videos, whose option sets differ): every answer value keeps as many questions as the rarest one,
    the earliest ones; other question types are untouched. Fewer questions, but the options carry no
    prior a text-only model could exploit."""
    counts: dict[tuple[str, bool], Counter[str]] = {}
    for s, _, d in drafts:
        if d.subtype in BALANCED_SUBTYPES:
            counts.setdefault((d.subtype, s.long), Counter())[d.answer] += 1
    caps = {group: min(c.values()) for group, c in counts.items()}
    kept: Counter[tuple[str, bool, str]] = Counter()
    out = []
    for s, k, d in drafts:
        group = (d.subtype, s.long)
        if group in caps:
            if kept[(*group, d.answer)] >= caps[group]:
                continue
            kept[(*group, d.answer)] += 1
        out.append((s, k, d))
    return out


def split_questions(cfg: WorldConfig, split: str, scenes: list[Scene]) -> list[Question]:
    drafts: list[tuple[Scene, int, Draft]] = []
    for s in scenes:
        n = cfg.questions_per_long_video if s.long else cfg.questions_per_video
        for k, d in enumerate(draft_questions(s, n, cfg.category_weights, cfg.seed)):
            drafts.append((s, k, d))
    drafts = _balance(drafts)
    pos = _balanced_positions(random.Random(f"sparrow-world/positions/{cfg.seed}/{split}"), len(drafts))
    flags = _text_flags(
        random.Random(f"sparrow-world/text/{cfg.seed}/{split}"), len(drafts), cfg.text_answerable
    )
    return [
        finalize(d, f"{s.video_id}-q{k}", s, pos[i], flags[i], cfg.phrasing)
        for i, (s, k, d) in enumerate(drafts)
    ]


# ------------------------------------------------------------------------------------------- records


def video_rel(video_id: str) -> str:
    return f"videos/{video_id}.mp4"


def qa_record(q: Question, open_ended: bool = False) -> Sample:
    """The question as a training record: multiple choice (lettered options, reply ``"B. red"``), or
    ``open_ended`` (the bare question, reply = the right option's text), the form cloze scoring asks."""
    meta = {
        "category": q.category,
        "subtype": q.subtype,
        "video_id": q.video_id,
        "duration": q.duration,
        "fps": q.fps,
        "answer_index": q.answer_index,
        "evidence": q.evidence,
        "centre_frame_suffices": q.centre_frame_suffices,
        "text_answerable": q.text_answerable,
        "split": q.split,
        "template": q.template,
        "target": q.target,
        "checks": q.checks,
    }
    if open_ended:
        prompt, reply = q.question.strip(), q.options[q.answer_index]
    else:
        prompt, reply = format_mcq_prompt(q.question, q.options), format_mcq_answer(q.options, q.answer_index)
    return Sample(
        id=f"{q.id}-open" if open_ended else q.id,
        messages=[
            {"role": "user", "content": "<video>\n" + prompt},
            {"role": "assistant", "content": reply},
        ],
        media=[Media(type="video", path=video_rel(q.video_id))],
        source="world",
        meta=meta,
    )


def bench_row(q: Question) -> dict[str, Any]:
    return {
        "id": q.id,
        "video": video_rel(q.video_id),
        "question": q.question,
        "options": q.options,
        "answer": option_letter(q.answer_index),
        "category": q.category,
        "duration": q.duration,
        "evidence": q.evidence,
        "centre_frame_suffices": q.centre_frame_suffices,
        "text_answerable": q.text_answerable,
        "split": q.split,
        "subtype": q.subtype,
        "fps": q.fps,
        "video_id": q.video_id,
        "template": q.template,
        "target": q.target,
        "checks": q.checks,
    }


def caption_record(scene: Scene, phrasing: str, seed: int) -> Sample:
    rng = random.Random(f"sparrow-world/caption/{seed}/{scene.video_id}")
    prompt, template = phrase("caption", {}, phrasing, rng)
    return Sample(
        id=f"{scene.video_id}-caption",
        messages=[
            {"role": "user", "content": "<video>\n" + prompt},
            {"role": "assistant", "content": "\n".join(caption_lines(scene))},
        ],
        media=[Media(type="video", path=video_rel(scene.video_id))],
        source="world-captions",
        meta={
            "video_id": scene.video_id,
            "duration": float(scene.duration),
            "fps": scene.fps,
            "template": template,
        },
    )


def text_records(cfg: WorldConfig, scenes: list[Scene]) -> list[Sample]:
    """Text-only instruction records: a scene's event log as context and a question about it, the same
    reasoning the video questions need, with no media (the text share of a training mix)."""
    items = []
    for s in scenes:
        drafts = draft_questions(s, cfg.text_records_per_video, cfg.category_weights, cfg.seed + 7919)
        items += [(s, k, d) for k, d in enumerate(drafts)]
    pos = _balanced_positions(random.Random(f"sparrow-world/text-positions/{cfg.seed}"), len(items))
    out = []
    for i, (s, k, d) in enumerate(items):
        q = finalize(d, f"{s.video_id}-text{k}", s, pos[i], False, cfg.phrasing)
        log = "\n".join(caption_lines(s))
        user = (
            f"Here is a log of what happened in a video, one event per line:\n{log}\n\n"
            + format_mcq_prompt(q.question, q.options)
        )
        out.append(
            Sample(
                id=q.id,
                messages=[
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": format_mcq_answer(q.options, q.answer_index)},
                ],
                source="world-text",
                meta={"category": q.category, "subtype": q.subtype, "answer_index": q.answer_index},
            )
        )
    return out


# ---------------------------------------------------------------------------------------- the job


def render_item(payload: dict[str, Any]) -> dict[str, Any]:
    """Render and encode one video."""
    scene = Scene.from_dict(payload["scene"])
    n = encode_scene(
        scene,
        payload["path"],
        crf=payload["crf"],
        gop_seconds=payload["gop_seconds"],
        preset=payload["x264_preset"],
    )
    return {"video_id": scene.video_id, "bytes": n, "frames": scene.num_frames}


def _our_videos(out: Path) -> list[Path]:
    """Videos this generator names (``<split>-NNNN.mp4``); other files in videos/ are never touched."""
    pattern = re.compile("(?:" + "|".join(SPLITS) + r")-\d{4,}\.mp4")
    return [p for p in sorted((out / "videos").glob("*.mp4")) if pattern.fullmatch(p.name) and p.is_file()]


class WorldStage(Stage):
    """One item per planned video; the questions, records and transcripts are written from the plans of
    the videos that were encoded, once all are done."""

    name = "world"
    unit = "videos"
    temp_globs = (".*.tmp", "videos/.*.tmp.mp4")  # the second: an interrupted encode

    def __init__(self, cfg: WorldConfig, scenes: list[Scene], out: Path):
        self.cfg, self.scenes, self.out = cfg, scenes, out

    def fingerprint(self) -> dict[str, Any]:
        # Item keys name the exact video content, so other settings need no refusal: changed videos
        # are simply re-rendered.
        return {"generator": "sparrow.world", "version": VERSION}

    def total(self) -> int:
        return len(self.scenes)

    def items(self) -> Iterator[WorkItem]:
        cfg = self.cfg
        for s in self.scenes:
            spec = {
                "scene": s.to_dict(),
                "crf": cfg.crf,
                "gop_seconds": cfg.gop_seconds,
                "x264_preset": cfg.x264_preset,
                "version": VERSION,
            }
            digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
            payload = {**spec, "path": str(self.out / video_rel(s.video_id))}
            yield WorkItem(key=f"{s.video_id}:{digest}", payload=payload, id=s.video_id, source="world")

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        return render_item(payload)

    def reusable(self, item: WorkItem, result: ItemResult) -> bool:
        # A lost file is re-rendered, not trusted; an earlier failure (disk full, killed worker) is
        # retried rather than remembered, since a video plan itself cannot be "bad input".
        path = Path(item.payload["path"])
        return result.ok and path.is_file() and path.stat().st_size == (result.value or {}).get("bytes")

    def collector(self, out: Path) -> Collector:
        return _WorldOutputs(self.cfg, self.scenes, out)

    def discard(self, out: Path) -> None:
        for p in _our_videos(out):
            p.unlink()


class _WorldOutputs(Collector):
    def __init__(self, cfg: WorldConfig, scenes: list[Scene], out: Path):
        self.cfg, self.scenes, self.out = cfg, scenes, out
        self.ok: set[str] = set()
        self.summary = WorldSummary(out=out)

    def add(self, item: WorkItem, result: ItemResult) -> int:
        self.ok.add(item.id or "")
        self.summary.frames += (result.value or {})["frames"]
        self.summary.rendered += not result.skipped
        return 1

    def close(self, report: JobReport) -> WorldSummary:
        s = self.summary
        s.videos, s.resumed, s.failed, s.seconds = len(self.ok), report.resumed, report.failed, report.seconds
        planned = {f"{sc.video_id}.mp4" for sc in self.scenes}
        for p in _our_videos(self.out):
            if p.name not in planned:
                p.unlink()  # left by an earlier run with more videos
        _write_outputs(self.cfg, [sc for sc in self.scenes if sc.video_id in self.ok], self.out, s)
        return s


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def generate_world(
    out: str | os.PathLike,
    seed: int = 0,
    preset: str = "tiny",
    *,
    config: WorldConfig | None = None,
    workers: int = 1,
    executor: str = "local",
    overwrite: bool = False,
    on_progress: Callable[[JobEvent], None] | None = None,
    **overrides: Any,
) -> WorldSummary:
    """Write the world to ``out``. ``config`` (if given) wins over ``seed`` / ``preset`` / ``overrides``.
    ``on_progress(JobEvent)`` is called after each video (for progress bars); an exception from it stops
    the job, and a re-run resumes where it stopped."""
    try:
        cfg = config if config is not None else preset_config(preset, seed, **overrides)
    except TypeError as e:
        raise WorldError(f"bad world setting: {e}") from e
    cfg.validate()
    stage = WorldStage(cfg, plan_world(cfg), Path(out))
    options = JobOptions(workers=workers, executor=executor, overwrite=overwrite, on_progress=on_progress)
    return run_job(stage, out, options)


def _write_outputs(cfg: WorldConfig, scenes: list[Scene], out: Path, summary: WorldSummary) -> None:
    by_split = {sp: [s for s in scenes if s.split == sp] for sp in SPLITS}
    counts: dict[str, Any] = {}
    cat_total: Counter[str] = Counter()
    for split in SPLITS:
        qs = split_questions(cfg, split, by_split[split])
        write_jsonl(out / f"{split}_video_qa.jsonl", (qa_record(q) for q in qs))
        write_jsonl(out / f"{split}_video_qa_open.jsonl", (qa_record(q, open_ended=True) for q in qs))
        if split != "train":
            write_jsonl(out / f"bench_{split}.jsonl", (bench_row(q) for q in qs))
        cats = Counter(q.category for q in qs)
        cat_total.update(cats)
        summary.questions[split] = len(qs)
        counts[split] = {
            "videos": len(by_split[split]),
            "long_videos": sum(s.long for s in by_split[split]),
            "video_seconds": sum(s.duration for s in by_split[split]),
            "questions": len(qs),
            "categories": {c: cats.get(c, 0) for c in CATEGORIES},
            "answer_letters": {option_letter(i): sum(q.answer_index == i for q in qs) for i in range(4)},
            "text_answerable": sum(q.text_answerable for q in qs),
            "centre_frame_suffices": sum(q.centre_frame_suffices for q in qs),
        }
    summary.categories = {c: cat_total.get(c, 0) for c in CATEGORIES}
    train = by_split["train"]
    summary.captions = write_jsonl(
        out / "train_captions.jsonl", (caption_record(s, cfg.phrasing, cfg.seed) for s in train)
    )
    summary.text_records = write_jsonl(out / "train_text.jsonl", text_records(cfg, train))
    frame_records = (
        r
        for s in train
        for r in frame_caption_records(s, video_rel(s.video_id), cfg.frame_captions_per_video, cfg.seed)
    )
    counts["frame_captions"] = write_jsonl(out / "train_frame_captions.jsonl", frame_records)
    for split in SPLITS:
        rows = corpus_rows(
            split,
            cfg.corpus_docs.get(split, 0),
            cfg.seed,
            tuple(cfg.corpus_words),
            cfg.corpus_questions_per_doc,
        )
        summary.corpus_rows += write_jsonl(out / f"corpus_{split}.jsonl", rows)
        counts[split]["corpus_rows"] = len(rows)
    gt, asr, noise = {}, {}, {}
    for s in scenes:
        gt[s.video_id] = ground_truth(s)
        asr[s.video_id], noise[s.video_id] = noisy_transcript(s, cfg.transcript_noise, cfg.seed)
    _write_json(out / "transcripts" / "ground_truth.json", gt)
    _write_json(out / "transcripts" / "caption.json", asr)
    _write_json(out / "transcripts" / "noise.json", noise)
    counts["captions"], counts["text_records"] = summary.captions, summary.text_records
    files = {}
    for p in sorted(out.glob("*.jsonl")) + sorted((out / "transcripts").glob("*.json")):
        if p.name != "errors.jsonl":
            files[p.relative_to(out).as_posix()] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    videos = hashlib.sha256()
    video_bytes = 0
    for s in scenes:
        p = out / video_rel(s.video_id)
        videos.update(f"{p.name}:{_sha256(p)}\n".encode())
        video_bytes += p.stat().st_size
    files["videos/"] = {"count": len(scenes), "bytes": video_bytes, "sha256": videos.hexdigest()}
    world = {
        "generator": "sparrow.world",
        "version": VERSION,
        "seed": cfg.seed,
        "preset": cfg.preset,
        "categories": list(CATEGORIES),
        "counts": counts,
        "settings": cfg.to_dict(),
        "files": files,
    }
    _write_json(out / "world.json", world, indent=2)
