"""Whole evaluation and curation jobs as library calls: what `sparrow eval` / `sparrow curate` and the demo run.

``evaluate_checkpoint`` loads a checkpoint once and evaluates it under one or more modalities, each into
its own folder (predictions.jsonl, metrics.json, run.json, errors.jsonl), resumably.
``curate_results`` reads results of several models and writes the curated benchmark and its report.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.eval.curate import (
    CurateConfig,
    CurationReport,
    Result,
    ResultTable,
    curate,
    group_scores,
    load_results,
    parse_spec,
    plot_heatmap,
    redundancy_matrix,
)
from sparrow.eval.mcq import (
    EVAL_MODALITIES,
    METHODS,
    EvalConfig,
    compute_metrics,
    modality_sampling,
    parse_sampling_overrides,
    read_bench,
    run_eval,
)
from sparrow.io import atomic_write_text, iter_jsonl, write_jsonl
from sparrow.jobs import prepare_state


class EvalError(ValueError):
    """An evaluation cannot run (bad flags, unreadable benchmark or checkpoint)."""


def model_name(model: str | os.PathLike) -> str:
    """A readable default name: a training run's ``final`` / ``stage2-...`` checkpoint is named after its
    run directory too, so results of several runs do not all read ``final``."""
    model = Path(model).resolve()
    if model.name == "final" or model.name.startswith("stage"):
        return f"{model.parent.name}-{model.name}"
    return model.name


@dataclass
class EvalOptions:
    modalities: tuple[str, ...] = ("video",)
    method: str = "loglik"
    sampling: str | None = None  # overrides of the checkpoint's SamplingConfig, "k=v,k=v"
    name: str | None = None
    batch_size: int = 8
    max_new_tokens: int = 16
    device: str = "cpu"
    dtype: str | None = None
    media_root: str | None = None
    buckets: tuple[float, ...] = (30.0, 120.0, 600.0)
    bootstrap: int = 1000
    seed: int = 0
    overwrite: bool = False
    # CPU threads for torch while evaluating (None: leave torch's setting). Small models on a busy CPU
    # run many times faster on one thread than on several that spin-wait for each other.
    threads: int | None = None

    def validate(self) -> None:
        bad = [m for m in self.modalities if m not in EVAL_MODALITIES]
        if bad or not self.modalities:
            raise EvalError(f"modality must be one of {', '.join(EVAL_MODALITIES)} (got {bad or 'none'})")
        if self.method not in METHODS:
            raise EvalError(f"method must be one of {', '.join(METHODS)} (got {self.method!r})")
        if self.batch_size < 1:
            raise EvalError("batch size must be at least 1")
        if not self.buckets:
            raise EvalError("duration buckets need at least one edge")


@dataclass
class ModalityResult:
    modality: str
    out_dir: Path
    metrics: dict[str, Any]
    errors: int
    bad_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def evaluate_checkpoint(
    model_dir: str | os.PathLike,
    bench: str | os.PathLike,
    out: str | os.PathLike,
    options: EvalOptions | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    clip_cache: Any = None,
) -> list[ModalityResult]:
    """Evaluate ``model_dir`` on ``bench``; one output folder per modality (``out`` itself when there is
    one modality, ``out/<modality>`` otherwise). ``on_progress(modality, done, total)`` after each batch.
    ``clip_cache`` (a ``sparrow.model.processor.ClipCache``) shares decoded clips between calls, e.g. when
    several checkpoints with the same sampling answer the same benchmark; by default each call keeps its
    own, so the questions of one video decode it once."""
    options = options or EvalOptions()
    options.validate()
    model_dir, bench, out = Path(model_dir), Path(bench), Path(out)
    if not bench.is_file():
        raise EvalError(f"benchmark file not found: {bench}")
    if not (model_dir / "config.json").is_file():
        raise EvalError(f"not a Sparrow checkpoint (no config.json): {model_dir}")
    rows, bad = read_bench(bench)
    if not rows:
        raise EvalError(
            f"no valid benchmark rows in {bench}" + (f" (first problem: {bad[0].reason})" if bad else "")
        )

    from sparrow.model import ConfigError, load_pretrained
    from sparrow.model.processor import ClipCache

    try:
        model, processor = load_pretrained(model_dir, device=options.device, dtype=options.dtype)
    except (ConfigError, OSError, ValueError) as e:
        raise EvalError(f"cannot load checkpoint {model_dir}: {str(e).splitlines()[0]}") from e
    processor.clip_cache = clip_cache if clip_cache is not None else ClipCache(256)
    import torch

    threads_before = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        return _evaluate_modalities(model, processor, model_dir, bench, out, options, rows, bad, on_progress)
    finally:
        torch.set_num_threads(threads_before)


def _evaluate_modalities(
    model: Any,
    processor: Any,
    model_dir: Path,
    bench: Path,
    out: Path,
    options: EvalOptions,
    rows: list[Any],
    bad: list[Any],
    on_progress: Callable[[str, int, int], None] | None,
) -> list[ModalityResult]:
    base_sampling = parse_sampling_overrides(options.sampling, processor.sampling)
    name = options.name or model_name(model_dir)
    bench_sha = hashlib.sha1(bench.read_bytes()).hexdigest()
    results = []
    for mod in options.modalities:
        odir = out / mod if len(options.modalities) > 1 else out
        cfg = EvalConfig(
            modality=mod,
            method=options.method,
            batch_size=options.batch_size,
            max_new_tokens=options.max_new_tokens,
            sampling=base_sampling,
            media_root=options.media_root,
        )
        fingerprint = {
            "model": str(model_dir.resolve()),
            "bench_sha1": bench_sha,
            "modality": mod,
            "method": options.method,
            "sampling": asdict(base_sampling),
            "max_new_tokens": options.max_new_tokens if options.method == "generate" else None,
            "media_root": cfg.media_root,
            "dtype": options.dtype,
        }
        state = prepare_state(odir / ".state", fingerprint, overwrite=options.overwrite)
        done = 0

        def progress(n: int, mod: str = mod) -> None:
            nonlocal done
            done += n
            if on_progress:
                on_progress(mod, done, len(rows))

        preds, errors = run_eval(model, processor, rows, bench.parent, cfg, state / "results.jsonl", progress)
        metrics = compute_metrics(preds, options.buckets, options.bootstrap, options.seed)
        metrics.update(
            {"name": name, "modality": mod, "method": options.method, "errors": len(errors) + len(bad)}
        )
        write_jsonl(odir / "predictions.jsonl", preds)
        write_jsonl(
            odir / "errors.jsonl", [b.to_dict() for b in bad] + [{**e, "source": str(bench)} for e in errors]
        )
        atomic_write_text(odir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        run = {
            "name": name,
            "model": str(model_dir.resolve()),
            "bench": bench.stem,
            "bench_path": str(bench.resolve()),
            "modality": mod,
            "method": options.method,
            "sampling": asdict(modality_sampling(base_sampling, mod)),
            "questions": len(rows),
        }
        atomic_write_text(odir / "run.json", json.dumps(run, indent=2) + "\n")
        results.append(ModalityResult(mod, odir, metrics, len(errors), len(bad)))
    return results


# ------------------------------------------------------------------------------------------- curation


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
    """ApolloBench curation of the results named by ``specs`` (``[MODEL@][MODALITY:]PATH``: `sparrow eval`
    folders or lmms-eval sample logs). Writes kept.jsonl, decisions.jsonl, curated_<bench>.jsonl (the
    original rows, ranked, where they are on disk), scores.csv, redundancy heatmaps and curation.json."""
    config = config or CurateConfig()
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
    with (out / "scores.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "full", "curated"])
        for m in report.models:
            w.writerow([m, report.full_scores.get(m), report.curated_scores.get(m)])

    redundancy: dict[str, Any] = {}
    heatmaps: list[Path] = []
    # R² between groups needs at least 3 models (2 points always lie on a line).
    for by in ("bench", "category", "duration") if len(report.models) >= 3 else ():
        scores = group_scores(table, by, config.buckets)
        if len(scores) < 2:
            continue
        names, mat = redundancy_matrix(scores)
        redundancy[by] = {"groups": names, "r2": [[None if v != v else float(v) for v in row] for row in mat]}
        png = out / f"redundancy_{by}.png"
        plot_heatmap(names, mat, png, f"Redundancy by {by}: R² of model scores")
        heatmaps.append(png)
    if len(report.models) < 3:
        report.notes.append("fewer than 3 models: no redundancy matrices")

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


def _write_curated_rows(report: CurationReport, specs: Sequence[str], out: Path) -> list[str]:
    """Write curated_<bench>.jsonl (original rows, ranked) for benches whose rows are on disk."""
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
    written = []
    for bench, bp in bench_files.items():
        by_id = {obj["id"]: obj for _, obj in iter_jsonl(bp) if isinstance(obj, dict) and "id" in obj}
        kept = [by_id[d.qid] for d in report.kept if d.bench == bench and d.qid in by_id]
        if kept:
            name = f"curated_{bench}.jsonl"
            write_jsonl(out / name, kept)
            written.append(name)
    return written
