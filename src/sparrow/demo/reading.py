"""The honest reading: plain sentences on what the numbers mean at this scale, built from the metrics and
the paired comparisons so that every number quoted is one of the files'."""

from __future__ import annotations

from typing import Any

from sparrow.demo.compare import ci_text, find
from sparrow.demo.config import BASELINE_RUN, CHANCE, REFERENCE
from sparrow.demo.runs import final_name

Metrics = dict[str, dict[str, dict[str, Any]]]
Comps = list[dict[str, Any]]

SCALE = (
    "Scale: a model of under a million parameters, trained for minutes on a CPU from random weights, on a "
    "procedural world. The numbers show that every part of the pipeline works end to end and where the "
    "signal comes from; they say nothing about how a real model trained on real data would score."
)


def _final(metrics: Metrics) -> str:
    final = final_name(metrics)
    v = metrics[final]["video"]
    lo, hi = v["ci95"]
    return (
        f"The trained model ({final}) answers {v['accuracy']:.3f} of the {v['n']} test questions right under "
        f"the video condition (95% bootstrap CI {lo:.3f}-{hi:.3f}); chance with four options is "
        f"{CHANCE:.2f}"
        + (", so it is clearly above chance." if lo > CHANCE else ", so it is NOT clearly above chance.")
    )


def _training(metrics: Metrics, comps: Comps) -> str | None:
    ref = metrics.get(REFERENCE, {}).get("video")
    trained = find(comps, "training")
    if not (ref and trained):
        return None
    clear = trained["ci95"][0] > 0
    return (
        f"Scored the same way, the untrained model (random weights) gets {ref['accuracy']:.3f} "
        f"({ref['ci95'][0]:.3f}-{ref['ci95'][1]:.3f}): option scoring has biases of its own, so that, "
        f"not {CHANCE:.2f}, is the floor. Training added {trained['diff']:+.3f} (paired 95% CI "
        f"{ci_text(trained['ci95'])}), "
        + ("clearly more than nothing." if clear else "which is within the noise: the model did not learn.")
    )


def _seeing(metrics: Metrics, comps: Comps) -> str | None:
    seeing = find(comps, "seeing")
    t = metrics[final_name(metrics)].get("text")
    if not (t and seeing):
        return None
    text = (
        f"From the question alone, without the video, the same model scores {t['accuracy']:.3f}; "
        f"seeing the video adds {seeing['diff']:+.3f} (paired 95% CI {ci_text(seeing['ci95'])}). "
    )
    if seeing["ci95"][0] > 0:
        text += "So part of what it learned is to look, not only what answers are typical. "
    else:
        text += (
            "So at this scale most of what it learned is answer priors: which answers are typical for "
            "which kind of question (and the world's deliberately text-answerable questions), not "
            "what the video shows. "
        )
    cats = [c for c in comps if c["what"] == "seeing" and c["category"] and c["ci95"][0] > 0]
    best = max(cats, key=lambda c: c["diff"], default=None)
    if best is not None:
        text += (
            f"The clearest visual gain is in {best['category']}: {best['diff']:+.3f} "
            f"({ci_text(best['ci95'])}, n={best['n']})."
        )
    return text.strip()


def _reliance(metrics: Metrics, comps: Comps) -> str | None:
    rel = find(comps, "video reliance")
    s = metrics[final_name(metrics)].get("swap")
    if not (s and rel):
        return None
    text = (
        f"Asked every question with another test video in place of its own, it scores {s['accuracy']:.3f}: "
        f"its video reliance (video minus swap) is {rel['diff']:+.3f} (paired 95% CI {ci_text(rel['ci95'])}). "
    )
    if rel["ci95"][0] > 0:
        text += "Its answers depend on which video it is shown: it reads the video."
    else:
        text += (
            "Showing it the wrong video does not measurably hurt: its answers do not depend on the video "
            "it is shown, whatever the video condition scores."
        )
    return text


def _mix(metrics: Metrics, comps: Comps) -> str | None:
    mix = find(comps, "the mix")
    base = metrics.get(f"{BASELINE_RUN}-final", {}).get("video")
    if not (base and mix):
        return None
    return (
        f"The video-only baseline (the same recipe without the synthetic and text sources) scores "
        f"{base['accuracy']:.3f} on video; the full mix minus the baseline is {mix['diff']:+.3f} "
        f"(paired 95% CI {ci_text(mix['ci95'])})"
        + (
            "."
            if mix["ci95"][0] > 0 or mix["ci95"][1] < 0
            else ", within the noise: at this scale the synthetic and text shares neither help nor "
            "hurt measurably."
        )
    )


def _curation(curation: dict[str, Any]) -> str | None:
    s = curation.get("summary", {})
    if not s:
        return None
    return (
        f"Curation kept {s.get('kept')} of {s.get('questions')} questions (dropped "
        f"{s.get('dropped_text_answerable')} that most of the {s.get('models')} trained checkpoints answer "
        f"from the text alone and {s.get('dropped_frame_answerable')} from the centre frame). With "
        "checkpoints of one small family that share the same answer priors, the vote mostly finds the "
        "questions those priors solve; ApolloBench's recipe assumes many diverse, capable models."
    )


def honest_reading(metrics: Metrics, curation: dict[str, Any], comps: Comps | None = None) -> list[str]:
    """Plain sentences on what the numbers mean at this scale, derived from the metrics themselves."""
    comps = comps or []
    lines = [
        _final(metrics),
        _training(metrics, comps),
        _seeing(metrics, comps),
        _reliance(metrics, comps),
        _mix(metrics, comps),
        _curation(curation),
        SCALE,
    ]
    return [line for line in lines if line is not None]
