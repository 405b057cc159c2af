"""Where the evidence of a question is visible: object and word visibility at a time, and the pixel
"checks" a test can verify on the decoded video."""

from __future__ import annotations

from typing import Any

from sparrow.world.scene import Scene, ShapeObject, WordEvent
from sparrow.world.video_writer import object_pixel


def _frames_around(scene: Scene, t: float) -> list[float]:
    i = scene.frame_at(t)
    return [scene.frame_time(j) for j in (i - 1, i, i + 1) if 0 <= j < scene.num_frames]


def object_visible(scene: Scene, o: ShapeObject, t: float) -> bool:
    """Whole object in frame and its centre not covered by another object, at t and the frames next to it
    (a one-frame baseline may land a frame off the exact centre)."""
    return all(
        o.fully_visible(u, scene.size) and not scene.covered(u, *o.position(u), by_others_of=o.oid)
        for u in _frames_around(scene, t)
    )


def word_visible(scene: Scene, w: WordEvent, t: float) -> bool:
    return all(w.shown(u) for u in _frames_around(scene, t))


def colour_check(scene: Scene, o: ShapeObject) -> dict[str, Any] | None:
    """A frame where the object's centre pixel shows its colour (standing, uncovered), nearest the
    middle of its stop."""
    a, b = scene.frame_at(o.stop[0]), scene.frame_at(min(o.stop[1], scene.duration) - 1e-6)
    mid = (a + b) // 2
    for i in sorted(range(a, b + 1), key=lambda j: (abs(j - mid), j)):
        t = scene.frame_time(i)
        if object_visible(scene, o, t):
            x, y = object_pixel(o, t)
            return {"kind": "colour", "frame": i, "t": round(t, 4), "x": x, "y": y, "colour": o.colour}
    return None


def word_checks(scene: Scene, w: WordEvent) -> list[dict[str, Any]]:
    """The word's box holds text of its colour in the middle of its interval, and none when no word is
    shown (a frame outside every word interval, if there is one)."""
    i = scene.frame_at((w.start + w.end) / 2)
    out = [
        {
            "kind": "word",
            "frame": i,
            "t": round(scene.frame_time(i), 4),
            "box": list(w.box),
            "text": w.text,
            "colour": w.colour,
            "font_px": w.font_px,
            "present": True,
        }
    ]
    for j in range(0, scene.num_frames, max(1, scene.fps // 2)):
        t = scene.frame_time(j)
        if not any(v.start - 0.5 <= t < v.end + 0.5 for v in scene.words):
            out.append(
                {
                    "kind": "word",
                    "frame": j,
                    "t": round(t, 4),
                    "box": list(w.box),
                    "text": w.text,
                    "colour": w.colour,
                    "font_px": w.font_px,
                    "present": False,
                }
            )
            break
    return out
