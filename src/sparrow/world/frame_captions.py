"""Single-frame captions: what one frame shows, for the alignment stage that teaches a connector to see.

A video-level caption is long and mostly template words; a frame caption names only what the pixels of
one frame show, in a fixed order ("an orange circle, a blue square. The word BIRD."), a few tokens a
sample, so nearly every supervised token is a visual fact. The world can write one for every second of
every video, exactly, from the scene plan.

A record's media is a one-frame segment of the video, ``{"type": "video", "start": t, "end": t + 0.5}``:
any sampling of at most 2 fps takes exactly the frame shown at ``t`` (whole seconds, so the frame index
is ``t * fps``), the frame the caption describes.
"""

from __future__ import annotations

import random

from sparrow.records import Media, Sample
from sparrow.world.scene import Scene
from sparrow.world.vocab import article

FRAME_CAPTION_PROMPT = "What does this frame show?"
SEGMENT_SECONDS = 0.5  # the segment a record points at: one frame at <= 2 fps


def frame_caption(scene: Scene, t: float) -> str:
    """The caption of the frame shown at ``t``: the shapes whose centre is in view, left to right, then
    the word on screen. Deterministic: the same scene and time give the same text."""
    shapes = []
    for o in scene.objects:
        p = o.position(t)
        if p is not None and 0 <= p[0] < scene.size:
            shapes.append((p[0], f"{article(o.colour)} {o.colour} {o.shape}"))
    parts = [", ".join(name for _, name in sorted(shapes)).capitalize() + "." if shapes else "No shapes."]
    words = [w for w in scene.words if w.shown(t)]
    if words:
        w = words[0]
        colour = "" if not w.highlighted else f" in {w.colour}"
        parts.append(f"The word {w.text}{colour}.")
    return " ".join(parts)


def frame_times(scene: Scene, per_video: int, seed: int) -> list[int]:
    """Up to ``per_video`` whole-second times of ``scene``, drawn without replacement from (seed, video)."""
    times = list(range(scene.duration))
    if len(times) <= per_video:
        return times
    rng = random.Random(f"sparrow-world/frame-captions/{seed}/{scene.video_id}")
    return sorted(rng.sample(times, per_video))


def frame_caption_records(scene: Scene, video_path: str, per_video: int, seed: int) -> list[Sample]:
    """One record per chosen second of ``scene``: the one-frame segment and its caption."""
    out = []
    for t in frame_times(scene, per_video, seed):
        out.append(
            Sample(
                id=f"{scene.video_id}-frame{t:04d}",
                messages=[
                    {"role": "user", "content": "<video>\n" + FRAME_CAPTION_PROMPT},
                    {"role": "assistant", "content": frame_caption(scene, float(t))},
                ],
                media=[Media(type="video", path=video_path, start=float(t), end=t + SEGMENT_SECONDS)],
                source="world-frame-captions",
                meta={"video_id": scene.video_id, "t": float(t)},
            )
        )
    return out
