"""The diversity probe: hand-checkable metric values, instruction extraction from every layout, and an
end-to-end run with the offline all-MiniLM-L6-v2 encoder on a templated vs a varied instruction set."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sparrow.diversity import (
    DiversityConfig,
    DiversityError,
    embed,
    instruction_of,
    load_encoder,
    mean_cosine_distance,
    measure,
    probe,
    reservoir,
    template_clusters,
    vendi_score,
)
from sparrow.formats import to_llava, to_minicpm, to_sharegpt
from sparrow.records import Media, qa_sample

TEMPLATES = [
    "What is the {} doing in the video?",
    "How many {}s appear in the video?",
    "What color is the {}?",
    "Describe the {} in the video.",
    "Where is the {} at the end of the video?",
    "Does the {} move left or right?",
    "What happens after the {} appears?",
    "Is the {} moving quickly or slowly?",
    "When does the {} first appear?",
]
VARIED = [
    "Summarize the paper's argument about carbon pricing in three sentences.",
    "Which character betrays the narrator, and what motivates the betrayal?",
    "Translate the second paragraph into plain English for a ten-year-old.",
    "List every date mentioned in the minutes and what happened on each.",
    "What would happen to the bread if the starter were past its peak?",
    "Compare the two proposals for the allotment waiting list.",
    "Why did the radio link fail in May?",
    "Write a haiku inspired by the lighthouse story.",
    "What is the median turbidity reported on the main stem?",
    "Explain how the German language builds compound nouns.",
    "Which of the long words is a real political position?",
    "Give a counterargument to the author's conclusion on insurance premiums.",
    "How does the Song dynasty method of preparing tea differ from the modern one?",
    "Estimate how many volunteers the network needs next season and justify it.",
    "What evidence links the algal mats to the night-time oxygen minima?",
    "Rewrite the recipe's troubleshooting section as a table.",
    "Who wrote the first book about tea and what did it cover?",
    "What does the skipper's notebook reveal about sound in fog?",
    "Identify the logical fallacy in the treasurer's explanation, if any.",
    "Propose a title for the report that a newspaper might use.",
    "Which sensors drifted, by how much, and how was it fixed?",
    "Describe the structure of the glossary and suggest one more entry.",
    "Convert the bread's oven temperatures to Fahrenheit.",
    "What role does the fog bell's timing play in the story's ending?",
    "How many litres does the new water tank hold?",
    "Outline the four proposals for season four in order of cost.",
    "What is the longest word most people can define, according to the text?",
    "Draft an email inviting members to the next annual meeting.",
    "Why is rye dough not kneaded?",
    "Which station was moved and for what reason?",
    "Explain single linkage clustering and its chaining problem.",
    "What are the risks of training a model on noisy transcripts?",
    "Name three uses of the number pi given in the glossary.",
    "Critique the experimental design described in section two.",
    "What changed between season two and season three?",
    "Classify the six tea types by how they are processed.",
    "Which record in the minutes was approved without changes?",
    "What is the purpose of a pressure transducer at each station?",
    "Tell the story again from the skipper's point of view.",
    "How long should the loaves rest, and why?",
]


def test_vendi_and_distance_hand_values():
    eye = np.eye(6)
    assert vendi_score(eye) == pytest.approx(6.0)
    assert vendi_score(np.ones((5, 4))) == pytest.approx(1.0)
    # two orthogonal groups of identical vectors, equal sizes: effective number 2
    two = np.array([[1.0, 0.0]] * 3 + [[0.0, 2.0]] * 3)
    assert vendi_score(two) == pytest.approx(2.0)
    # [e1, e1, e2]: ordered pairs i != j have similarities 1, 1, 0, 0, 0, 0 -> distance 1 - 2/6
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert mean_cosine_distance(x) == pytest.approx(2.0 / 3.0)
    assert mean_cosine_distance(eye) == pytest.approx(1.0)
    assert mean_cosine_distance(np.ones((4, 3))) == pytest.approx(0.0)
    # K/n eigenvalues of [e1, e1, e2] are 2/3 and 1/3
    p = np.array([2 / 3, 1 / 3])
    assert vendi_score(x) == pytest.approx(float(np.exp(-(p * np.log(p)).sum())))


def test_template_clusters_complete_linkage():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 32))
    x = np.repeat(base, [6, 3, 1], axis=0) + rng.normal(scale=0.01, size=(10, 32))
    labels = template_clusters(x, 0.9)
    assert labels.tolist() == [0] * 6 + [1] * 3 + [2]
    m = measure(x, 0.9)
    assert m["template_clusters"] == 3 and m["largest_cluster_share"] == pytest.approx(0.6)
    assert m["near_duplicate_share"] == pytest.approx(0.9)
    # a chain a~b, b~c (cos 0.87) with a, c far apart (cos 0.5) is not one cluster at 0.8
    a = np.array([1.0, 0.0])
    b = np.array([np.cos(np.pi / 6), np.sin(np.pi / 6)])
    c = np.array([np.cos(np.pi / 3), np.sin(np.pi / 3)])
    assert len(set(template_clusters(np.stack([a, b, c]), 0.8).tolist())) == 2


def test_instruction_of_every_layout():
    s = qa_sample(
        "s1", "What is shown?", "A cat.", media=[Media(type="frames", paths=["f/0.png", "f/1.png"])]
    )
    assert instruction_of(s.to_dict()) == "What is shown?"
    assert instruction_of(to_llava(s)) == "What is shown?"
    assert instruction_of(to_sharegpt(s)) == "What is shown?"
    assert instruction_of(to_minicpm(s)) == "What is shown?"
    assert instruction_of({"context": "c", "question": "Why?", "answer": "a"}) == "Why?"
    assert instruction_of({"messages": [{"role": "assistant", "content": "hi"}]}) is None
    assert (
        instruction_of([1, 2]) is None
        and instruction_of({"messages": [{"role": "user", "content": "<video>"}]}) is None
    )


def test_reservoir_is_seeded_capped_and_ordered():
    items = [f"t{i}" if i % 10 else None for i in range(1000)]
    a, n, missing = reservoir(iter(items), 50, seed=3)
    b, _, _ = reservoir(iter(items), 50, seed=3)
    c, _, _ = reservoir(iter(items), 50, seed=4)
    assert a == b and a != c and len(a) == 50 and n == 900 and missing == 100
    assert a == sorted(a, key=lambda t: int(t[1:]))
    assert reservoir(iter(["x", "y"]), 50, seed=0)[0] == ["x", "y"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("div")
    rng = random.Random(0)
    templated = [
        qa_sample(
            f"t{i}",
            rng.choice(TEMPLATES).format(rng.choice(["cat", "car", "ball"])),
            "x",
            media=[Media(type="video", path="v.mp4")],
        )
        for i in range(80)
    ]
    native = root / "templated.jsonl"
    native.write_text("".join(json.dumps(s.to_dict()) + "\n" for s in templated))
    llava = root / "templated_llava.json"
    llava.write_text(json.dumps([to_llava(s) for s in templated]))
    varied = root / "varied.jsonl"
    varied.write_text(
        "".join(json.dumps({"context": "c", "question": q, "answer": "a"}) + "\n" for q in VARIED)
    )
    return {"native": native, "llava": llava, "varied": varied}


def test_probe_separates_templated_from_varied(inputs, tmp_path):
    out = tmp_path / "out"
    reports = probe(
        [inputs["native"], inputs["varied"], inputs["llava"]],
        out,
        DiversityConfig(projection="tsne", seed=1, threads=1),
        labels=["templated", "varied", "templated-llava"],
    )
    tmpl, varied, llava = reports
    assert tmpl.samples == 80 and varied.samples == len(VARIED)
    assert varied.vendi > 2 * tmpl.vendi
    assert varied.mean_cosine_distance > tmpl.mean_cosine_distance + 0.2
    # at most 27 distinct instructions (9 templates x 3 objects): repeated ones are near-duplicates
    assert tmpl.template_clusters <= 27 and tmpl.near_duplicate_share > 0.9
    assert (
        varied.template_clusters >= len(VARIED) - 2
        and varied.largest_cluster_share < tmpl.largest_cluster_share
    )
    # the LLaVA copy of the same samples measures the same
    assert (llava.vendi, llava.template_clusters) == (tmpl.vendi, tmpl.template_clusters)
    report = json.loads((out / "diversity.json").read_text())
    assert [r["label"] for r in report["inputs"]] == ["templated", "varied", "templated-llava"]
    img = np.asarray(Image.open(out / "diversity.png").convert("RGB"))
    # points of the three inputs in their tab10 colours (blue, orange, green)
    for colour in ([31, 119, 180], [255, 127, 14], [44, 160, 44]):
        close = np.abs(img.astype(int) - np.array(colour)).sum(axis=2) < 60
        assert close.sum() > 20


def test_subsampling_and_cli(inputs, tmp_path):
    from typer.testing import CliRunner

    from sparrow.cli import app

    out = tmp_path / "cli"
    res = CliRunner().invoke(
        app,
        [
            "diversity",
            str(inputs["native"]),
            str(inputs["varied"]),
            "--out",
            str(out),
            "--max-samples",
            "30",
            "--projection",
            "pca",
            "--seed",
            "5",
            "--threads",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "diversity.json").read_text())
    assert [r["samples"] for r in report["inputs"]] == [30, 30]
    assert [r["records"] for r in report["inputs"]] == [80, len(VARIED)]
    assert "Vendi" in res.output
    res = CliRunner().invoke(app, ["diversity", str(tmp_path / "missing.jsonl"), "--out", str(out)])
    assert res.exit_code != 0
    with pytest.raises(DiversityError, match="projection"):
        DiversityConfig(projection="umap").validate()


def test_encoder_loads_offline_without_touching_the_environment(monkeypatch, tmp_path):
    """The packaged MiniLM loads from its folder with no HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set, and
    computing embeddings leaves os.environ exactly as it was."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    before = dict(os.environ)
    emb = embed(["What colour is the ball?", "Summarize the paper."], load_encoder(None), threads=1)
    assert dict(os.environ) == before
    assert emb.shape == (2, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(DiversityError, match="cannot load a sentence-transformers model"):
        load_encoder(str(tmp_path))
