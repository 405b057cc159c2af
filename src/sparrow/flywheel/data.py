"""The flywheel's data folder (``OUT/data``): the world's training videos linked in, the split into
human-example videos and scored videos, and the files every round reads.

Training records name their media relative to their own JSONL file and may not leave its folder, so
the records and the videos they point at live together here; videos are hard-linked (copied where the
file system cannot link), never moved.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparrow.captions import CaptionsError, Line, Transcript, load_captions, parse_entry
from sparrow.flywheel.config import FlywheelConfig, FlywheelError
from sparrow.flywheel.line_examples import line_examples
from sparrow.flywheel.narrated import narrated_records, segment
from sparrow.io import atomic_write_text, write_jsonl
from sparrow.refine.caption_stage import find_video
from sparrow.refine.collect import caption_record


@dataclass
class FlywheelData:
    """``videos``: the world's training videos (linked); ``asr``: the scored videos' transcripts, entries as
    the world wrote them (bad ones too); ``reference``: their ground truth; ``human_records``: caption
    records from the human videos' ground truth; ``human_pairs``: the human videos' transcript lines paired
    with the captions they became (``narrated_records``: the captioner's fine-tuning data); ``examples``:
    few-shot rows for round 0's LLM (``sparrow refine --examples``)."""

    root: Path
    scored: tuple[str, ...]  # videos whose captions are refined, re-annotated and scored
    human: tuple[str, ...]  # videos whose ground truth plays the human-refined examples; never scored
    videos: Path = field(init=False)
    asr: Path = field(init=False)
    reference: Path = field(init=False)
    human_records: Path = field(init=False)
    human_pairs: Path = field(init=False)
    examples: Path = field(init=False)

    def __post_init__(self) -> None:
        names = ("videos", "asr.json", "reference.json", "human.jsonl", "human-pairs.jsonl", "examples.jsonl")
        self.videos, self.asr, self.reference, self.human_records, self.human_pairs, self.examples = (
            self.root / n for n in names
        )

    def records(self, name: str) -> Path:
        """Caption training records of one round (``round-0``, ...) or of the raw transcripts (``asr``)."""
        return self.root / f"{name}.jsonl"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FlywheelError(f"{what} not found: {path} (is this the output of `sparrow world`?)") from None
    except (OSError, ValueError) as e:
        raise FlywheelError(f"cannot read {what} {path}: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise FlywheelError(f"{what} {path} must map video ids to captions")
    return data


def split_videos(ids: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """(human, scored): a seeded draw of ``share`` of ``ids`` (at least one, at most all but one)."""
    n = min(max(1, round(share * len(ids))), len(ids) - 1)
    human = set(random.Random(f"sparrow-flywheel/human/{seed}").sample(ids, n))
    return [v for v in ids if v in human], [v for v in ids if v not in human]


def _link(src: Path, dst: Path) -> None:
    if dst.exists() and dst.stat().st_size == src.stat().st_size:
        return
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not allowed: copy instead
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _records(transcripts: dict[str, Transcript], videos: Path, path: Path) -> int:
    """Plain caption records (clip -> text), each clip moved inside its video (ASR times can run past
    the end) and at least a second long."""
    from sparrow.video import probe

    rows = []
    for vid in sorted(transcripts):
        video = find_video(videos, vid)
        if video is None:
            continue
        duration = probe(video).duration
        for k, line in enumerate(transcripts[vid].lines):
            clip = Line(*segment(line, duration), line.text)
            rows.append(caption_record(vid, k, str(video), clip, path.parent))
    return write_jsonl(path, rows)


def prepare_data(world: str | os.PathLike, out: str | os.PathLike, cfg: FlywheelConfig) -> FlywheelData:
    """Write ``OUT/data`` from a ``sparrow world`` folder (idempotent: a second call rewrites the same)."""
    world = Path(world)
    raw = _read_json(world / "transcripts" / "caption.json", "ASR transcripts")
    truth = (
        load_captions(world / "transcripts" / "ground_truth.json")
        if (world / "transcripts" / "ground_truth.json").is_file()
        else {}
    )
    if not truth:
        raise FlywheelError(
            f"no ground truth in {world / 'transcripts'} (is this the output of `sparrow world`?)"
        )
    ids = sorted(v for v in raw if v.startswith("train-") and v in truth)[: cfg.videos]
    if len(ids) < 2:
        raise FlywheelError(f"{world} has {len(ids)} training videos with transcripts; the flywheel needs 2")
    human, scored = split_videos(ids, cfg.human_share, cfg.seed)
    data = FlywheelData(Path(out) / "data", tuple(scored), tuple(human))
    data.videos.mkdir(parents=True, exist_ok=True)
    for vid in ids:
        src = find_video(world / "videos", vid)
        if src is not None:  # a missing video is reported by the round that needs it
            _link(src, data.videos / src.name)
    atomic_write_text(data.asr, json.dumps({v: raw[v] for v in scored}, indent=1) + "\n")
    atomic_write_text(data.reference, json.dumps({v: truth[v].to_dict() for v in scored}, indent=1) + "\n")
    _records({v: truth[v] for v in human}, data.videos, data.human_records)
    transcripts = {}  # the chosen videos' entries parsed once; a malformed one is reported by its round
    for v in ids:
        with contextlib.suppress(CaptionsError):
            transcripts[v] = parse_entry(v, raw[v])
    _records({v: transcripts[v] for v in scored if v in transcripts}, data.videos, data.records("asr"))
    known = [v for v in human if v in transcripts]
    narrated_records({v: transcripts[v] for v in known}, truth, data.videos, data.human_pairs)
    examples = line_examples(transcripts, truth, known, cfg.few_shot)
    write_jsonl(data.examples, ({"transcript": e.transcript, "captions": e.captions} for e in examples))
    return data
