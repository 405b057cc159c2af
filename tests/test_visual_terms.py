"""Visual terms: which answer tokens name what the video shows (the training loss split's mask), from the
term list to the processor's per-token mask and the collated batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from sparrow.model import Processor
from sparrow.model.collate import collate
from sparrow.model.errors import ConfigError
from sparrow.model.visual_terms import VisualTerms
from sparrow.records import Media, Sample

pytestmark = pytest.mark.usefixtures("one_thread")


def test_terms_match_whole_words_plurals_and_patterns():
    terms = VisualTerms(("orange", "circle", "cross", "BIRD"), (r"\d+",))
    text = "00:04-00:08: an Orange circle, two crosses, the word bird; BIRDS, crossing, circled."
    found = [text[a:b] for a, b in terms.char_spans(text)]
    assert found == ["00", "04", "00", "08", "Orange", "circle", "crosses", "bird", "BIRDS"]
    # A token overlapping a match counts, whatever its split ("or" + "ange").
    assert terms.token_mask("an orange", [(0, 2), (2, 5), (5, 9)]) == [False, True, True]


def test_specs():
    world = VisualTerms.from_spec("world")
    assert "magenta" in world.terms and "triangle" in world.terms and "BIRD" in world.terms
    assert world.sources is None and VisualTerms.from_spec("auto").sources == ("world",)
    for off in (None, False, "none", [], {}):
        assert VisualTerms.from_spec(off) is None
    assert VisualTerms.from_spec(["red"]).terms == ("red",)
    spec = VisualTerms.from_spec({"terms": ["red"], "patterns": ["x+"], "sources": ["cam"]})
    assert (spec.terms, spec.patterns, spec.sources) == (("red",), ("x+",), ("cam",))
    with pytest.raises(ConfigError, match="bad pattern"):
        VisualTerms.from_spec({"patterns": ["("]})
    with pytest.raises(ConfigError, match="visual_terms must be"):
        VisualTerms.from_spec(3)


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vt")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "0.png")
    return root


def _sample(answer: str, source: str = "world", media: bool = True) -> Sample:
    return Sample(
        id="s",
        messages=[
            {"role": "user", "content": ("<video>\n" if media else "") + "What is there? red circle"},
            {"role": "assistant", "content": answer},
        ],
        media=[Media(type="frames", paths=["0.png"])] if media else [],
        source=source,
    )


def _visual_text(proc: Processor, feats: dict) -> list[str]:
    ids = feats["input_ids"][feats["visual_mask"]].tolist()
    return [proc.tokenizer.decode([i]) for i in ids]


def test_processor_marks_the_answer_tokens_that_spell_a_term(frames_root):
    proc = Processor(tiny_config(), visual_terms=VisualTerms.from_spec("auto"))
    answer = "B. an orange circle and the word BIRD, 3 times."
    feats = proc(_sample(answer), frames_root)
    mask, labels = feats["visual_mask"], feats["labels"]
    assert mask.shape == labels.shape and mask.dtype == torch.bool
    assert not mask[labels == -100].any()  # the prompt's "red circle" is not a label: never visual
    tok = proc.tokenizer
    expected = sum(
        len(tok(w, add_special_tokens=False)["input_ids"]) for w in (" orange", " circle", " BIRD")
    )
    assert int(mask.sum()) == expected + 1  # + the count "3"
    assert "".join(_visual_text(proc, feats)) == " orange circle BIRD3"  # digits tokenise alone
    # Under auto, only world records with media: another source or a text-only record has none.
    assert not proc(_sample(answer, source="web"), frames_root)["visual_mask"].any()
    assert not proc(_sample(answer, media=False), frames_root)["visual_mask"].any()
    # No terms: no mask at all (outputs as before).
    assert "visual_mask" not in Processor(tiny_config())(_sample(answer), frames_root)


def test_collate_carries_the_mask_packed_and_unpacked(frames_root):
    proc = Processor(tiny_config(), visual_terms=VisualTerms.world())
    feats = [proc(_sample("a red square"), frames_root), proc(_sample("2 circles, 1 cross"), frames_root)]
    for pack in (False, True):
        batch = collate(feats, proc.pad_token_id, pack=pack)
        mask = batch["visual_mask"]
        assert mask.shape == batch["input_ids"].shape
        assert int(mask.sum()) == sum(int(f["visual_mask"].sum()) for f in feats)
        for i, f in enumerate(feats):
            assert torch.equal(mask[batch["seq_index"] == i], f["visual_mask"])
    assert "visual_mask" not in collate([{**f, "visual_mask": None} for f in feats], proc.pad_token_id)
