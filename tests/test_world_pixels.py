"""The world's evidence really visible in its decoded videos: colours and words (read back by OCR),
durations and times, shape counts, what the centre frame shows, and the one-frame captions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from world_data import all_questions, small_config

from sparrow.records import load_samples
from sparrow.video import Fps, Uniform, probe, sample
from sparrow.world.scene import WordEvent
from sparrow.world.video_writer import object_pixel, word_patch
from sparrow.world.vocab import COLOURS, nearest_colour

# The shared fixtures, found by pytest where they are imported.
from world_data import scenes_fixture, world_fixture  # noqa: F401  # isort: skip


_frames: dict[str, dict[int, np.ndarray]] = {}


def frames_of(world: Path, video: str) -> dict[int, np.ndarray]:
    """Every frame of a world video, decoded with sparrow.video, by frame index."""
    if video not in _frames:
        path = world / video
        clip = sample(path, Fps(probe(path).fps))
        _frames[video] = dict(zip(clip.indices, clip.frames, strict=True))
    return _frames[video]


def text_mask(region: np.ndarray, colour: str) -> np.ndarray:
    r, g, b = (region[..., k].astype(int) for k in range(3))
    if colour == "white":
        return (np.minimum(np.minimum(r, g), b) > 170) & (
            np.maximum(np.maximum(r, g), b) - np.minimum(r, b) < 70
        )
    return (r > 170) & (g > 160) & (b < 120)  # yellow


def crop(frame: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return frame[y0:y1, x0:x1]


def patch_error(frame: np.ndarray, box, text: str, colour: str, font_px: int) -> float:
    ref = word_patch(WordEvent(text, 0, 1, tuple(box), colour, font_px)).astype(float)
    return float(np.mean((crop(frame, box).astype(float) - ref) ** 2))


def palette_colours_below(frame: np.ndarray, band: int, min_pixels: int = 12) -> set[str]:
    """Palette colours that cover a real area below the word band (shapes live there)."""
    px = frame[band:].reshape(-1, 3).astype(int)
    pal = np.array(list(COLOURS.values()))
    d = ((px[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
    near = d.min(1) < 45**2
    counts = Counter(np.array(list(COLOURS))[d.argmin(1)[near]])
    return {c for c, n in counts.items() if n >= min_pixels}


# ------------------------------------------------------------------------------------ evidence visible


def test_evidence_is_visible_in_decoded_frames(world):
    n_colour = n_word = n_absent = n_ocr = 0
    for q in all_questions(world):
        frames = frames_of(world, q["video"])
        for c in q["checks"]:
            f = frames[c["frame"]]
            if c["kind"] == "colour":
                y, x = c["y"], c["x"]
                assert (
                    nearest_colour(f[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0)) == c["colour"]
                ), (q["id"], c)
                n_colour += 1
            else:
                share = text_mask(crop(f, c["box"]), c["colour"]).mean()
                if c["present"]:
                    assert share > 0.06, (q["id"], c, share)
                    n_word += 1
                else:
                    assert share < 0.01, (q["id"], c, share)
                    n_absent += 1
        if q["subtype"] in ("which_word", "needle_word", "last_word"):
            # OCR: the word in the box is the answer, not one of the other options.
            c = next(c for c in q["checks"] if c["kind"] == "word" and c["present"])
            f = frames[c["frame"]]
            errs = [patch_error(f, c["box"], opt, c["colour"], c["font_px"]) for opt in q["options"]]
            assert int(np.argmin(errs)) == q["answer_index"], (q["id"], errs)
            n_ocr += 1
    assert n_colour >= 20 and n_word >= 10 and n_absent >= 5 and n_ocr >= 5


def test_duration_and_time_answers_match_decoded_frames(world):
    """Count the frames that show the word (by matching its rendered patch): seconds = frames / fps,
    and the first/last such frame give the time-range answer."""
    checked = Counter()
    for q in all_questions(world):
        if q["subtype"] not in ("word_seconds", "when_word", "count_words"):
            continue
        frames = frames_of(world, q["video"])
        fps = q["fps"]
        answer = q["options"][q["answer_index"]]
        if q["subtype"] == "count_words":
            band = round(next(iter(frames.values())).shape[0] * 0.3)
            on = [
                text_mask(frames[i][:band], "white").mean() + text_mask(frames[i][:band], "yellow").mean()
                > 0.01
                for i in sorted(frames)
            ]
            runs = sum(1 for i, v in enumerate(on) if v and (i == 0 or not on[i - 1]))
            assert str(runs) == answer, q["id"]
        else:
            c = next(c for c in q["checks"] if c["present"])
            px = c["font_px"]
            shown = [
                i
                for i in sorted(frames)
                if patch_error(frames[i], c["box"], c["text"], c["colour"], px) < 300
            ]
            assert shown == list(range(shown[0], shown[-1] + 1))
            seconds = len(shown) / fps
            if q["subtype"] == "word_seconds":
                assert answer == (f"{seconds:g} second" + ("s" if seconds != 1 else "")), (q["id"], shown)
            else:
                start, end = shown[0] / fps, (shown[-1] + 1) / fps
                assert (
                    answer
                    == f"{int(start) // 60:02d}:{int(start) % 60:02d}-{int(end) // 60:02d}:{int(end) % 60:02d}"
                )
        checked[q["subtype"]] += 1
    assert len(checked) == 3 and sum(checked.values()) >= 6, checked


def test_shape_answers_match_decoded_frames(world, scenes):
    """Counting and colour answers read back from the pixels: the distinct shape colours seen below the
    word band over the whole video, and the colour at the object's centre."""
    done = Counter()
    for q in all_questions(world):
        answer = q["options"][q["answer_index"]]
        scene = scenes[q["video_id"]]
        frames = frames_of(world, q["video"])
        if q["subtype"] == "count_shapes":
            seen = set()
            for i in range(0, scene.num_frames, max(1, scene.fps // 4)):
                seen |= palette_colours_below(frames[i], scene.band)
            assert str(len(seen)) == answer, (q["id"], seen)
            done["count"] += 1
        if q["subtype"] == "colour_of_shape":
            (o,) = [o for o in scene.objects if o.oid == q["target"]]
            assert answer == o.colour and o.shape in q["question"]
            done["colour"] += 1
    assert done["count"] >= 2 and done["colour"] >= 2


def test_centre_frame_ground_truth(world, scenes):
    """Where the centre frame is said to suffice it shows the evidence; where it is said not to (object
    absent at the centre, word not shown then), the centre frame does not show it."""
    n_true = n_absent = 0
    for q in all_questions(world):
        scene = scenes[q["video_id"]]
        centre = sample(world / q["video"], Uniform(1)).frames[0]
        assert sample(world / q["video"], Uniform(1)).indices[0] == scene.num_frames // 2
        if q["category"] == "perception":
            (o,) = [o for o in scene.objects if o.oid == q["target"]]
            p = object_pixel(o, scene.centre_time)
            if q["centre_frame_suffices"]:
                x, y = p
                assert nearest_colour(centre[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0)) == o.colour
                n_true += 1
            elif p is None:
                assert o.colour not in palette_colours_below(centre, scene.band)
                n_absent += 1
        elif q["centre_frame_suffices"]:
            if q["subtype"] == "count_shapes":
                assert len(palette_colours_below(centre, scene.band)) == int(q["options"][q["answer_index"]])
            elif q["subtype"] == "which_word":
                c = next(c for c in q["checks"] if c["present"])
                assert text_mask(crop(centre, c["box"]), c["colour"]).mean() > 0.06
            else:
                assert q["subtype"] in ("count_words", "needle_word")
            n_true += 1
        elif q["subtype"] == "which_word":
            # "suffices" is claimed only when the centre frame and both neighbours show the evidence
            # (a baseline may land a frame off); so "not suffices" means one of the three lacks it.
            c = next(c for c in q["checks"] if c["present"])
            frames = frames_of(world, q["video"])
            c_i = scene.num_frames // 2
            errs = [
                patch_error(frames[i], c["box"], c["text"], c["colour"], c["font_px"])
                for i in (c_i - 1, c_i, c_i + 1)
            ]
            assert max(errs) > 300
            n_absent += 1
    assert n_true >= 5 and n_absent >= 1


# ------------------------------------------------------------------------------------ frame captions


def test_frame_captions_name_what_the_decoded_frame_shows(world, scenes):
    """Each one-frame record decodes to the frame at its time, and every shape its caption names shows
    its colour at the shape's centre pixel (when no other shape may cover it); the word too."""
    records, bad = load_samples(world / "train_frame_captions.jsonl")
    assert not bad and records
    per_video = Counter(r.meta["video_id"] for r in records)
    assert max(per_video.values()) <= small_config().frame_captions_per_video
    checked = 0
    for r in records[:40]:
        scene = scenes[r.meta["video_id"]]
        t = r.meta["t"]
        m = r.media[0]
        clip = sample(world / m.path, Fps(1.0, max_frames=4), start=m.start, end=m.end)
        assert len(clip.frames) == 1 and clip.timestamps[0] == pytest.approx(t)
        frame = clip.frames[0]
        caption = r.messages[1]["content"]
        for o in scene.objects:
            px = object_pixel(o, t)
            named = f"{o.colour} {o.shape}" in caption
            inside = px is not None and 0 <= px[0] < scene.size
            assert named == inside, (r.id, o.name, caption)
            if named and 0 <= px[1] < scene.size and not scene.covered(t, px[0], px[1], o.oid):
                assert nearest_colour(frame[px[1], px[0]].tolist()) == o.colour, (r.id, caption)
                checked += 1
        words = [w.text for w in scene.words if w.shown(t)]
        assert (f"The word {words[0]}" in caption) if words else ("The word" not in caption)
    assert checked >= 20
