"""What the flywheel's captioner is asked, and the records it learns from: a transcript line's clip
together with what the narrator said, answered with the caption that line should become ("No caption."
for chatter). The same question is used for training and for re-annotation, so they cannot drift apart.

The captioner reads the narration as well as the clip, as a video-LLM re-annotating HowTo100M-style
videos would: the transcript says what happens and roughly when; the clip can confirm or correct it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sparrow.captions import Line, Transcript
from sparrow.flywheel.line_examples import align_lines
from sparrow.io import write_jsonl
from sparrow.refine.caption_stage import find_video
from sparrow.refine.collect import CAPTION_QUESTION
from sparrow.refine.prompts import NO_CAPTION

MIN_SEGMENT = 1.0  # seconds: a line at the very end of its video is asked about its last second


def narrated_question(spoken: str) -> str:
    return f'The narrator says: "{" ".join(spoken.split())}"\n{CAPTION_QUESTION}'


def segment(line: Line, duration: float) -> tuple[float, float]:
    """The clip a line is asked about: its own span, inside the video and at least MIN_SEGMENT long."""
    end = min(max(line.end, line.start + MIN_SEGMENT), duration)
    start = max(0.0, min(line.start, end - MIN_SEGMENT))
    return start, end


def narrated_record(
    video_id: str, k: int, video: Path, span: tuple[float, float], spoken: str, reply: str, root: Path
) -> dict[str, Any]:
    return {
        "id": f"{video_id}-line-{k:03d}",
        "messages": [
            {"role": "user", "content": f"<video>\n{narrated_question(spoken)}"},
            {"role": "assistant", "content": reply},
        ],
        "media": [{"type": "video", "path": os.path.relpath(video, root), "start": span[0], "end": span[1]}],
        "source": "flywheel",
        "meta": {"video_id": video_id},
    }


def narrated_records(
    transcripts: dict[str, Transcript], captions: dict[str, Transcript], videos: Path, path: Path
) -> int:
    """Training records pairing each transcript line with the caption it became (``align_lines``) or
    NO_CAPTION; videos without captions (or without a file) are left out."""
    from sparrow.video import probe

    rows = []
    for vid in sorted(transcripts):
        video = find_video(videos, vid)
        if video is None or vid not in captions:
            continue
        duration = probe(video).duration
        for k, (line, cap) in enumerate(align_lines(transcripts[vid], captions[vid])):
            reply = cap.text if cap is not None else NO_CAPTION
            rows.append(
                narrated_record(vid, k, video, segment(line, duration), line.text, reply, path.parent)
            )
    return write_jsonl(path, rows)


def world_pairs(world: str | os.PathLike, out: str | os.PathLike) -> int:
    """Narrated pairs of every training video of a ``sparrow world`` folder: each ASR line of
    ``transcripts/caption.json`` with its clip, answered with the ground-truth caption it aligns with (or
    NO_CAPTION), written to ``out`` (JSONL, media paths relative to its folder). The captioner task of the
    flywheel on videos with known captions: pretraining data for a checkpoint passed as
    ``--captioner-init`` to a flywheel on *another* world. Returns the number of records."""
    from sparrow.captions import load_captions

    root = Path(world)
    folder = root / "transcripts"
    for name in ("caption.json", "ground_truth.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: is {root} a `sparrow world` folder?")
    asr = {k: v for k, v in load_captions(folder / "caption.json").items() if k.startswith("train-")}
    truth = load_captions(folder / "ground_truth.json")
    return narrated_records(asr, truth, root / "videos", Path(out))
