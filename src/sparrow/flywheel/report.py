"""The flywheel's report page: the trinity per round (table and plots) and the plain reading of the
CIDEr-D intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparrow.flywheel.config import FlywheelConfig
from sparrow.flywheel.rounds import RoundResult
from sparrow.plots import pyplot
from sparrow.report.figures import save_figure
from sparrow.report.html import Figure, Report

COLUMNS = [
    "round", "source", "videos", "failed", "captions", "words/caption", "vocabulary", "distinct-2",
    "self-BLEU", "Vendi", "BLEU-4", "ROUGE-L", "CIDEr-D", "CIDEr-D - ASR [95% CI]", "slots (c/s/w/a)",
]  # fmt: skip


def _ci(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def _num(v: Any) -> Any:
    return "-" if v is None else v


def table_row(r: RoundResult) -> list[Any]:
    q, d, n, s = r.quantity, r.diversity, r.quality, r.slots
    slots = "/".join(f"{s[k]:.2f}" for k in ("colour", "shape", "word", "action") if k in s) or "-"
    return [
        r.name, r.source, r.videos or q.get("videos", 0), r.failed, q.get("captions", 0),
        q.get("words_per_caption", 0.0), d.get("vocabulary", 0), d.get("distinct_2", 0.0),
        d.get("self_bleu", 0.0), _num(d.get("vendi")), n.get("bleu_4", 0.0), n.get("rouge_l", 0.0),
        n.get("cider_d", 0.0), _ci(r.vs_asr), slots,
    ]  # fmt: skip


def plot_rounds(rows: list[RoundResult], path: Path) -> Path:
    """Left: CIDEr-D minus the raw transcripts' per round, with its 95 % interval. Right: the trinity's
    three faces per round, each relative to the transcripts (captions, distinct-2, CIDEr-D)."""
    plt = pyplot()
    rounds = [r for r in rows if r.name != "asr"]
    asr = next((r for r in rows if r.name == "asr"), None)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    x = list(range(len(rounds)))
    diffs = [r.vs_asr or {"difference": 0.0, "low": 0.0, "high": 0.0} for r in rounds]
    mid = [d["difference"] for d in diffs]
    err = [
        [m - d["low"] for m, d in zip(mid, diffs, strict=True)],
        [d["high"] - m for m, d in zip(mid, diffs, strict=True)],
    ]
    a.errorbar(x, mid, yerr=err, fmt="o-", capsize=4)
    a.axhline(0.0, color="grey", lw=1, ls="--")
    a.set_xticks(x, [r.name for r in rounds])
    a.set_ylabel("CIDEr-D − ASR transcripts")
    a.set_title("quality gain over the raw transcripts (95 % CI)")
    a.grid(alpha=0.3)
    faces = (("quantity", "captions"), ("diversity", "distinct_2"), ("quality", "cider_d"))
    for face, key in faces:
        base = getattr(asr, face).get(key) if asr else None
        vals = [getattr(r, face).get(key) or 0.0 for r in rounds]
        if base:
            b.plot(x, [v / base for v in vals], "o-", label=f"{face}: {key}")
    b.axhline(1.0, color="grey", lw=1, ls="--")
    b.set_xticks(x, [r.name for r in rounds])
    b.set_ylabel("relative to the ASR transcripts")
    b.set_title("the trinity per round")
    b.legend(fontsize=8)
    b.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def reading(rows: list[RoundResult]) -> list[str]:
    """One sentence per round on what its CIDEr-D interval says, with no more claimed than it shows."""
    out = []
    for r in rows:
        for label, d in (("the raw transcripts", r.vs_asr), ("round 0", r.vs_round0)):
            if not d:
                continue
            if d["low"] > 0:
                verdict = "beats"
            elif d["high"] < 0:
                verdict = "is worse than"
            else:
                verdict = "cannot be told apart from"
            out.append(f"{r.name} {verdict} {label} on CIDEr-D ({_ci(d)}, {d['videos']} videos).")
    return out


def _start(cfg: FlywheelConfig) -> str:
    """What each round's captioner starts from."""
    if cfg.captioner_init:
        return f"each captioner starts from {cfg.captioner_init}"
    return "each captioner trains afresh from its recipe's model"


def write_report(out: Path, rows: list[RoundResult], cfg: FlywheelConfig) -> Path:
    report = Report(
        "Sparrow flywheel",
        f"{cfg.rounds} captioner round(s) after LLM refinement; captioner loss {cfg.loss}; {_start(cfg)}; "
        f"seed {cfg.seed}. "
        "Scored against the world's ground truth on videos never used as human examples.",
    )
    sec = report.section("The trinity per round")
    sec.table(COLUMNS, [table_row(r) for r in rows], caption="slots: colour / shape / word / action")
    for sentence in reading(rows):
        sec.note(sentence)
    if any(r.name != "asr" for r in rows):
        sec.figures(
            [Figure(plot_rounds(rows, out / "figures" / "rounds.png"), "CIDEr-D gain and trinity per round")]
        )
    return report.write(out / "report.html")
