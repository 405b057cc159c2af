"""ApolloBench-style benchmark curation (Apollo, arXiv 2412.10360).

Apollo curates a benchmark from per-question correctness of many models under the three conditions
(``sparrow.eval.conditions``): questions that more than half of the models answer from text alone or
from one frame do not test video understanding and are dropped; the rest are ranked by how much the
models disagree (answer entropy) and the most discriminative are kept. The curated set must still rank
models like the full set does, which the report checks. Inputs come from ``sparrow.eval.results``.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.eval.analysis import group_scores, plot_heatmap, rank_agreement, redundancy_matrix
from sparrow.eval.errors import CurateError
from sparrow.eval.metrics import DEFAULT_BUCKETS
from sparrow.eval.results import Result, ResultTable, load_results, parse_spec
from sparrow.io import atomic_write_text, iter_jsonl, write_jsonl

Key = tuple[str, str]  # (bench, question id)


@dataclass
class CurateConfig:
    """What curation keeps; each field's comment is also its ``sparrow curate`` option's help."""

    threshold: float = 0.5  # Drop a question when MORE than this share of models is right from text or frame.
    # Keep the K highest-entropy questions, overall or per category (default: all that pass).
    top_k: int | None = None
    per_category: bool = False  # Apply the top-k within each category.
    buckets: tuple[float, ...] = DEFAULT_BUCKETS

    def validate(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise CurateError("threshold must be in [0, 1)")
        if self.top_k is not None and self.top_k < 1:
            raise CurateError("top-k must be at least 1")


@dataclass
class Decision:
    bench: str
    qid: str
    category: str | None
    duration: float | str | None
    text_share: float | None
    frame_share: float | None
    entropy: float
    kept: bool
    reason: str  # "kept", "text-answerable", "frame-answerable", "below top-k"
    rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CurationReport:
    decisions: list[Decision]
    kept: list[Decision]
    models: list[str]
    full_scores: dict[str, float]
    curated_scores: dict[str, float]
    correlation: dict[str, float | None]
    cost: dict[str, float | int | None]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        reasons = Counter(d.reason for d in self.decisions)
        return {
            "questions": len(self.decisions),
            "kept": len(self.kept),
            "dropped_text_answerable": reasons.get("text-answerable", 0),
            "dropped_frame_answerable": reasons.get("frame-answerable", 0),
            "dropped_below_top_k": reasons.get("below top-k", 0),
            "models": len(self.models),
            **{f"cost_{k}": v for k, v in self.cost.items()},
            **self.correlation,
        }


def _decide(table: ResultTable, key: Key, threshold: float) -> Decision:
    q = table.questions[key]
    ts, fs = table.share_correct(key, "text"), table.share_correct(key, "frame")
    if ts is not None and ts > threshold:
        reason = "text-answerable"
    elif fs is not None and fs > threshold:
        reason = "frame-answerable"
    else:
        reason = "kept"
    entropy = table.answer_entropy(key)
    return Decision(q.bench, q.qid, q.category, q.duration, ts, fs, entropy, reason == "kept", reason)


def _top_k(ranked: list[Decision], config: CurateConfig) -> list[Decision]:
    """The first ``top_k`` of the ranking, overall or per category; the rest are marked below top-k."""
    if config.top_k is None:
        return ranked
    if config.per_category:
        taken: Counter[str | None] = Counter()
        chosen = []
        for d in ranked:
            if taken[d.category] < config.top_k:
                taken[d.category] += 1
                chosen.append(d)
    else:
        chosen = ranked[: config.top_k]
    chosen_ids = {id(d) for d in chosen}
    for d in ranked:
        if id(d) not in chosen_ids:
            d.kept, d.reason = False, "below top-k"
    return chosen


def curate(table: ResultTable, config: CurateConfig | None = None) -> CurationReport:
    """Apollo's recipe: drop text/frame-answerable questions, rank the rest by answer entropy, keep top K."""
    config = config or CurateConfig()
    notes: list[str] = []
    keys = list(table.questions)
    if not keys:
        raise CurateError("no questions in the results")
    models = table.models("video")
    if not models:
        raise CurateError("no results under the video condition; curation ranks questions by video answers")
    for cond in ("text", "frame"):
        if not table.models(cond):
            notes.append(f"no {cond}-only results: {cond}-answerable questions could not be detected")
    decisions = [_decide(table, key, config.threshold) for key in keys]
    passing = [d for d in decisions if d.kept]
    order = sorted(range(len(passing)), key=lambda i: (-passing[i].entropy, i))  # stable on ties
    ranked = _top_k([passing[i] for i in order], config)
    for i, d in enumerate(ranked):
        d.rank = i + 1
    kept_keys = [(d.bench, d.qid) for d in ranked]
    full = table.scores(keys)
    cur = table.scores(kept_keys)
    common = [m for m in models if m in full and m in cur]
    corr = rank_agreement([full[m] for m in common], [cur[m] for m in common])
    if len(common) < 3:
        notes.append(f"only {len(common)} models: rank correlations are not meaningful")
    cost = _cost(table, keys, kept_keys)
    return CurationReport(decisions, ranked, models, full, cur, corr, cost, notes)


def _cost(table: ResultTable, full: list[Key], kept: list[Key]) -> dict[str, Any]:
    """Evaluation-cost reduction: questions, and video seconds where durations are known (decoding and
    visual tokens grow with the video, so seconds are the closer proxy for compute)."""
    out: dict[str, Any] = {"questions_full": len(full), "questions_kept": len(kept)}
    out["reduction_x"] = (len(full) / len(kept)) if kept else None

    def secs(keys: list[Key]) -> float | None:
        ds = [table.questions[k].duration for k in keys]
        return None if not ds or not all(isinstance(d, (int, float)) for d in ds) else float(sum(ds))

    sf, sk = secs(full), secs(kept)
    if sf is not None and sk:
        out["video_seconds_full"], out["video_seconds_kept"] = sf, sk
        out["video_seconds_reduction_x"] = sf / sk
    return out


# ------------------------------------------------------------------------------------- the whole job


@dataclass
class CurationOutput:
    report: CurationReport
    document: dict[str, Any]
    heatmaps: list[Path]
    curated_files: list[str]


def curate_results(
    specs: Sequence[str],
    out: str | os.PathLike,
    config: CurateConfig | None = None,
    on_input: Callable[[str], None] | None = None,
) -> CurationOutput:
    """ApolloBench curation of the results named by ``specs`` (``[MODEL@][CONDITION:]PATH``: `sparrow
    eval` folders or lmms-eval sample logs). Writes kept.jsonl, decisions.jsonl, curated_<bench>.jsonl
    (the original rows, ranked, where they are on disk), scores.csv, redundancy heatmaps and
    curation.json."""
    config = config or CurateConfig()
    config.validate()
    out = Path(out)
    loaded: list[Result] = []
    for spec_text in specs:
        loaded += load_results(parse_spec(spec_text))
        if on_input:
            on_input(spec_text)
    table = ResultTable(loaded)
    report = curate(table, config)

    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "kept.jsonl", [d.to_dict() for d in report.kept])
    write_jsonl(out / "decisions.jsonl", [d.to_dict() for d in report.decisions])
    curated_files = _write_curated_rows(report, specs, out)
    _write_scores(report, out / "scores.csv")
    redundancy, heatmaps = _redundancy(table, report, config, out)
    document = {
        "summary": report.summary(),
        "settings": {
            "threshold": config.threshold,
            "top_k": config.top_k,
            "per_category": config.per_category,
            "buckets": list(config.buckets),
        },
        "models": report.models,
        "full_scores": report.full_scores,
        "curated_scores": report.curated_scores,
        "correlation": report.correlation,
        "cost": report.cost,
        "redundancy": redundancy,
        "notes": report.notes,
        "curated_files": curated_files,
    }
    atomic_write_text(out / "curation.json", json.dumps(document, indent=2) + "\n")
    return CurationOutput(report, document, heatmaps, curated_files)


def _write_scores(report: CurationReport, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "full", "curated"])
        for m in report.models:
            w.writerow([m, report.full_scores.get(m), report.curated_scores.get(m)])


def _redundancy(
    table: ResultTable, report: CurationReport, config: CurateConfig, out: Path
) -> tuple[dict[str, Any], list[Path]]:
    """R² matrices by bench, category and duration, and their heatmaps."""
    redundancy: dict[str, Any] = {}
    heatmaps: list[Path] = []
    if len(report.models) < 3:  # R² between groups needs 3 models: 2 points always lie on a line
        report.notes.append("fewer than 3 models: no redundancy matrices")
        return redundancy, heatmaps
    for by in ("bench", "category", "duration"):
        scores = group_scores(table, by, config.buckets)
        if len(scores) < 2:
            continue
        names, mat = redundancy_matrix(scores)
        redundancy[by] = {"groups": names, "r2": [[None if v != v else float(v) for v in row] for row in mat]}
        png = out / f"redundancy_{by}.png"
        plot_heatmap(names, mat, png, f"Redundancy by {by}: R² of model scores")
        heatmaps.append(png)
    return redundancy, heatmaps


def _bench_files(specs: Sequence[str]) -> dict[str, Path]:
    """Benchmark files named by the ``run.json`` of `sparrow eval` results, by bench name."""
    bench_files: dict[str, Path] = {}
    for text in specs:
        path = parse_spec(text).path
        runs = (
            [path / "run.json", path.parent / "run.json", *sorted(path.rglob("run.json"))]
            if path.is_dir()
            else [path.parent / "run.json"]
        )
        for run in runs:
            if run.is_file():
                info = json.loads(run.read_text())
                bp = Path(info.get("bench_path", ""))
                if info.get("bench") and bp.is_file():
                    bench_files.setdefault(info["bench"], bp)
    return bench_files


def _write_curated_rows(report: CurationReport, specs: Sequence[str], out: Path) -> list[str]:
    """Write curated_<bench>.jsonl (original rows, ranked) for benches whose rows are on disk."""
    written = []
    for bench, bp in _bench_files(specs).items():
        by_id = {obj["id"]: obj for _, obj in iter_jsonl(bp) if isinstance(obj, dict) and "id" in obj}
        kept = [by_id[d.qid] for d in report.kept if d.bench == bench and d.qid in by_id]
        if kept:
            name = f"curated_{bench}.jsonl"
            write_jsonl(out / name, kept)
            written.append(name)
    return written
