"""``sparrow sample``: show which frames a sampling strategy takes from one video (and save them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from sparrow.commands._options import unset_option
from sparrow.ui import UsageError

CLIPS_FPS = 2.0  # in-clip fps of --clips without --fps (Apollo's clips are dense)
TABLE_SIZE = (16, 16)  # printing needs only the indices and times: decode tiny frames


def parse_size(text: str | None) -> int | tuple[int, int] | None:
    """``224`` (shorter side) or ``224x320`` (height x width)."""
    if text is None:
        return None
    try:
        if "x" in text.lower():
            h, w = text.lower().split("x")
            size: int | tuple[int, int] = (int(h), int(w))
        else:
            size = int(text)
    except ValueError:
        raise UsageError(
            f"--size takes 224 (shorter side) or 224x320 (height x width), got {text!r}"
        ) from None
    if (isinstance(size, int) and size < 1) or (isinstance(size, tuple) and min(size) < 1):
        raise UsageError(f"--size must be positive, got {text!r}")
    return size


def _given(**flags: Any) -> dict[str, Any]:
    """The flags the user set: the others take the strategy dataclass's defaults."""
    return {k: v for k, v in flags.items() if v is not None}


def build_strategy(
    fps: float | None,
    num_frames: int | None,
    clips: bool,
    min_frames: int | None = None,
    max_frames: int | None = None,
    multiple_of: int | None = None,
    frames_per_clip: int | None = None,
    max_clips: int | None = None,
) -> Any:
    """One strategy from the command-line flags, or a UsageError saying what clashes."""
    from sparrow.video import Clips, Fps, Uniform

    if num_frames is not None and (fps is not None or clips):
        raise UsageError("choose one of --fps, --num-frames or --clips")
    try:
        if num_frames is not None:
            return Uniform(num_frames)
        if clips:
            per_clip = _given(frames_per_clip=frames_per_clip, max_clips=max_clips)
            return Clips(fps if fps is not None else CLIPS_FPS, **per_clip)
        if fps is None:
            raise UsageError("say how to sample: --fps F, --num-frames N or --clips")
        return Fps(fps, **_given(min_frames=min_frames, max_frames=max_frames, multiple_of=multiple_of))
    except ValueError as e:
        raise UsageError(str(e)) from None


def _write_frames(frames: Any, out: Path) -> list[str]:
    """The frames as out/frame_00000.png, ... in order; returns their paths."""
    import io

    from PIL import Image

    from sparrow.io import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, frame in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        atomic_write_bytes(out / f"frame_{k:05d}.png", buf.getvalue())
        paths.append(str(out / f"frame_{k:05d}.png"))
    return paths


def _print_clip(video: Path, clip: Any, out: Path | None) -> None:
    from sparrow.ui import rows_table, summary_table
    from sparrow.video import clip_prefix, format_time

    info = clip.info
    rows = []
    for k, (i, t) in enumerate(zip(clip.indices, clip.timestamps, strict=True)):
        row = [k, i, f"{t:.3f}", format_time(t)]
        if clip.clip_spans is not None:
            c = k // clip.frames_per_clip
            row.append(clip_prefix(*clip.clip_spans[c]) if k % clip.frames_per_clip == 0 else "")
        rows.append(row)
    cols = ["#", "index", "time (s)", "clock"] + (["clip"] if clip.clip_spans is not None else [])
    rows_table(f"{len(rows)} frames from {video}", cols, rows)
    summary_table(
        "video",
        {
            "duration (s)": info.duration,
            "frames": info.num_frames,
            "fps": info.fps,
            "variable fps": info.variable_fps,
            "size (WxH)": f"{info.width}x{info.height}",
            "rotation": info.rotation,
            "codec": info.codec,
            "start time (s)": info.start_time,
            "partial": clip.partial,
            **({"frames written to": str(out)} if out is not None else {}),
        },
    )


def sample_cmd(
    video: Path = typer.Argument(..., help="The video file."),
    fps: float = unset_option("--fps", help="Frames per second to sample (with --clips: the in-clip fps)."),
    num_frames: int = unset_option("--num-frames", "-n", help="Sample N frames evenly (uniform)."),
    clips: bool = typer.Option(
        False, "--clips", help=f"Apollo clips: groups of frames at --fps (default {CLIPS_FPS:g})."
    ),
    frames_per_clip: int = unset_option("--frames-per-clip", help="Frames in each clip (with --clips)."),
    max_clips: int = unset_option("--max-clips", help="At most this many clips, spread over the video."),
    min_frames: int = unset_option("--min-frames", help="With --fps: at least this many frames."),
    max_frames: int = unset_option("--max-frames", help="With --fps: at most this many (evenly thinned)."),
    multiple_of: int = unset_option("--multiple-of", help="With --fps: frame count rounded to a multiple."),
    start: float = unset_option("--start", help="Segment start, seconds from the first frame."),
    end: float = unset_option("--end", help="Segment end, seconds from the first frame."),
    size: str = unset_option("--size", help="Output size: 224 (shorter side) or 224x320 (HxW)."),
    backend: str = typer.Option("auto", "--backend", help="Decoder: auto, pyav, torchcodec or decord."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="On a truncated file, keep the frames that decode instead of failing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (timestamps, indices, video info) only."),
    out: Path = unset_option("--out", "-o", help="Write the frames as frame_00000.png, ... here."),
) -> None:
    """Print the timestamps and indices a strategy picks from VIDEO (indices: positions in presentation
    order; timestamps: seconds from the first frame); with --out also write the frames as PNG in order.
    Strategy flags left unset take the defaults of sparrow.video's Fps and Clips (docs/video.md)."""
    from sparrow.video import BACKENDS, sample

    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}")
    strategy = build_strategy(
        fps, num_frames, clips, min_frames, max_frames, multiple_of, frames_per_clip, max_clips
    )
    size_arg = parse_size(size) if out is not None else TABLE_SIZE
    clip = sample(
        video, strategy, size=size_arg, start=start, end=end, backend=backend, allow_partial=allow_partial
    )
    result = {
        "video": clip.info.to_dict(),
        "strategy": {"name": type(strategy).__name__.lower(), **strategy.__dict__},
        "indices": clip.indices,
        "timestamps": clip.timestamps,
        "clip_spans": clip.clip_spans,
        "frames_per_clip": clip.frames_per_clip,
        "partial": clip.partial,
    }
    if out is not None:
        result["frames"] = _write_frames(clip.frames, out)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_clip(video, clip, out)


def register(app: typer.Typer) -> None:
    app.command(name="sample")(sample_cmd)
