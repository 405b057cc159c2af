"""OUT/report.html: one builder per section, each reading the files the steps wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparrow.demo.compare import ci_text, comparisons
from sparrow.demo.config import BASELINE_RUN, MAIN_RUN, REFERENCE, DemoConfig
from sparrow.demo.figures import accuracy_charts, synth_strip, world_strips
from sparrow.demo.reading import honest_reading
from sparrow.demo.runs import final_name
from sparrow.eval.conditions import CONDITIONS
from sparrow.report import Figure, Report

Metrics = dict[str, dict[str, dict[str, Any]]]

METHOD_TEXT = {
    "cloze_norm": "cloze, per token: the bare question, each option's text scored as the reply, its "
    "log-probability divided by its number of tokens; the highest wins",
    "cloze": "cloze: the bare question, each option's text scored as the reply (summed log-probability)",
    "loglik": "letter log-likelihood: the lettered prompt, each option's letter scored as the reply's start",
    "generate": "generation: a greedy reply, parsed for the option it names",
}
WORLD_COLUMNS = [
    "split",
    "videos",
    "long videos",
    "minutes",
    "questions",
    "text-answerable",
    "centre frame suffices",
]


def _reading_section(report: Report, metrics: Metrics, curation: dict, comps: list[dict[str, Any]]) -> None:
    sec = report.section("What the numbers mean")
    for line in honest_reading(metrics, curation, comps):
        sec.text(line)
    if comps:
        sec.table(
            ["adds", "A", "B", "category", "n", "A minus B", "paired 95% CI"],
            [
                [
                    c["what"],
                    f"{c['a']} ({c['a_condition']})",
                    f"{c['b']} ({c['b_condition']})",
                    c["category"] or "all",
                    c["n"],
                    c["diff"],
                    ci_text(c["ci95"]),
                ]
                for c in comps
            ],
            caption="Differences on the same questions; the interval resamples questions (paired bootstrap).",
        )


def _world_rows(world: Path) -> list[list[Any]]:
    wjson = json.loads((world / "world.json").read_text()) if (world / "world.json").is_file() else {}
    counts = wjson.get("counts") or {}
    rows = []
    for split in ("train", "val", "test"):
        c = counts.get(split)
        if isinstance(c, dict):
            minutes = round(float(c.get("video_seconds") or 0) / 60, 1)
            rows.append(
                [split, c.get("videos"), c.get("long_videos"), minutes, c.get("questions")]
                + [c.get("text_answerable"), c.get("centre_frame_suffices")]
            )
    return rows


def _world_section(report: Report, world: Path, figs: Path) -> None:
    sec = report.section("1. The world")
    sec.text(
        "Procedural videos of coloured shapes that enter, stop and leave, and words shown on screen; questions "
        "in seven categories with the evidence that answers them. Frames below are what sparrow.video samples "
        "at 1 frame per second, labelled with their timestamp and frame index."
    )
    for k, strip in enumerate(world_strips(world, figs)):
        sec.figures([Figure(strip, f"Test video {k + 1} sampled at 1 fps: timestamp (frame index)")])
    rows = _world_rows(world)
    if rows:
        sec.table(WORLD_COLUMNS, rows)


def _synth_section(report: Report, world: Path, figs: Path) -> None:
    sec = report.section("2. Synthetic pseudo-videos (Sparrow)")
    ssum = world / "synth" / "summary.json"
    if ssum.is_file():
        sd = json.loads(ssum.read_text())
        sec.text(
            "The world's long text corpus rendered frame by frame (every word appears once, in order, nothing "
            "clipped); the question and answer stay text. At the tiny model's input size the text is not "
            "legible: here the synthetic share shows the pipeline, not a skill the model can learn."
        )
        keys = ["records", "samples", "frames", "errors", "truncated"]
        sec.table(keys, [[sd.get(k) for k in keys]])
    sstrip = synth_strip(world, figs)
    if sstrip:
        sec.figures([Figure(sstrip, "The first frames of a synthetic sample")])


def _mixture_rows(run: Path) -> list[list[Any]]:
    path = run / "mixture_report.json"
    if not path.is_file():
        return []
    rows = []
    for st in json.loads(path.read_text()).get("stages", []):
        for src in st.get("sources", []):
            rows.append(
                [f"{st['stage']} {st['name']}", src["name"], src["drawn"], src["target_share"]]
                + [src["drawn_share"], src.get("skipped", 0)]
            )
    return rows


def _training_section(report: Report, cfg: DemoConfig) -> None:
    sec = report.section("3. Training: the mixture actually drawn and the loss curves")
    sec.text(
        "From the trainer's mixture_report.json: what each stage drew from each source against the shares "
        "its recipe asked for (skipped: samples the processor rejected and replaced, see errors.jsonl)."
    )
    for run in (MAIN_RUN, BASELINE_RUN):
        rdir = cfg.out / "runs" / run
        rows = _mixture_rows(rdir)
        if rows:
            columns = ["stage", "source", "drawn", "target share", "drawn share", "skipped"]
            sec.table(columns, rows, caption=run)
        curves = sorted(rdir.glob("loss_*.png"))
        if curves:
            sec.figures([Figure(p, f"{run}: {p.stem}", width=420) for p in curves])


def _category_cell(bc: dict[str, Any], cat: str) -> str:
    if cat not in bc:
        return "-"
    c = bc[cat]
    return f"{c['accuracy']:.2f} ({c['ci95'][0]:.2f}-{c['ci95'][1]:.2f}, n={c['n']})"


def _eval_section(report: Report, metrics: Metrics, figs: Path) -> None:
    sec = report.section("4. Evaluation: accuracy per model, condition and category")
    if REFERENCE in metrics:
        sec.text(
            f"'{REFERENCE}' is the model before any training (same config and seed): its score is the floor "
            "of this scoring method on this benchmark."
        )
    sec.text(
        "Conditions: video (the question's own video), frame (its centre frame only), text (no pixels) and "
        "swap (every question asked with another test video, a fixed seeded pairing): a model that reads "
        "the video loses accuracy under swap; video minus swap is its video reliance (paired intervals in "
        "'What the numbers mean')."
    )
    rows = [
        [name, cond, m["n"], m["accuracy"], f"{m['ci95'][0]:.3f}-{m['ci95'][1]:.3f}"]
        for name, by_cond in metrics.items()
        for cond in CONDITIONS
        if (m := by_cond.get(cond))
    ]
    sec.table(["model", "condition", "n", "accuracy", "95% CI"], rows)
    f1, f2 = accuracy_charts(metrics, final_name(metrics), figs)
    sec.figures(
        [
            Figure(f1, "Accuracy per condition for each model"),
            Figure(
                f2,
                "Accuracy per category: the trained model with its video, without, with another question's"
                " video (swap), and untrained",
            ),
        ]
    )
    cats = sorted({c for by_cond in metrics.values() for c in by_cond["video"]["by_category"]})
    cat_rows = [
        [name, cond] + [_category_cell(by_cond.get(cond, {}).get("by_category", {}), c) for c in cats]
        for name, by_cond in metrics.items()
        for cond in CONDITIONS
    ]
    sec.table(["model", "condition", *cats], cat_rows, caption="Accuracy (95% CI, n) per category")


def _reliance_section(report: Report, metrics: Metrics, comps: list[dict[str, Any]]) -> None:
    """The final model per category: video, swap and their paired difference (the video reliance)."""
    final = final_name(metrics)
    rel = [c for c in comps if c["what"] == "video reliance"]
    if not rel or "swap" not in metrics[final]:
        return
    sec = report.section(f"Video reliance of {final}: its own video against another question's")
    rows = []
    for c in rel:
        cat = c["category"]
        cells = [
            metrics[final][cond] if cat is None else metrics[final][cond]["by_category"].get(cat, {})
            for cond in ("video", "swap")
        ]
        acc = [f"{m['accuracy']:.3f} ({m['ci95'][0]:.3f}-{m['ci95'][1]:.3f})" if m else "-" for m in cells]
        rows.append([cat or "all", c["n"], *acc, c["diff"], ci_text(c["ci95"])])
    sec.table(
        ["category", "n", "video (95% CI)", "swap (95% CI)", "video minus swap", "paired 95% CI"],
        rows,
        caption="A model that reads the video scores lower when shown another question's video.",
    )


def _curation_section(report: Report, curation: dict[str, Any], cfg: DemoConfig) -> None:
    sec = report.section("5. Curation (ApolloBench recipe): curated vs full")
    sec.text(
        "Questions that more than half of the trained checkpoints answer from the text alone or from the centre "
        "frame are dropped; the rest are ranked by how much the models disagree. The curated set should rank "
        "the models like the full set does (rank correlations below)."
    )
    s = curation.get("summary", {})
    if s:
        sec.table(["what", "value"], [[k, "-" if v is None else v] for k, v in s.items()])
    full, curated = curation["full_scores"], curation["curated_scores"]
    sec.table(
        ["model", "full", "curated"],
        [[m, full.get(m, float("nan")), curated.get(m, float("nan"))] for m in curation.get("models", [])],
    )
    heat = sorted((cfg.out / "curate").glob("redundancy_*.png"))
    if heat:
        sec.figures([Figure(p, f"Redundancy heatmap: {p.stem.split('_', 1)[1]}", width=420) for p in heat])
    for note in curation.get("notes", []):
        sec.note(note)


def write_report(
    cfg: DemoConfig,
    world: Path,
    metrics: Metrics,
    curation: dict[str, Any],
    timings: dict[str, float],
    comps: list[dict[str, Any]] | None = None,
) -> Path:
    """Write ``OUT/report.html`` (figures under ``OUT/figures``) and return its path."""
    comps = comps if comps is not None else comparisons(cfg, metrics)
    figs = cfg.out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    report = Report(
        "Sparrow demo: the whole pipeline on the embedded world",
        intro=f"Output directory: {cfg.out}. Seed {cfg.seed}, world preset {cfg.preset}. Questions are scored "
        f"by {METHOD_TEXT.get(cfg.eval_method, cfg.eval_method)}.",
    )
    _reading_section(report, metrics, curation, comps)
    _world_section(report, world, figs)
    _synth_section(report, world, figs)
    _training_section(report, cfg)
    _eval_section(report, metrics, figs)
    _reliance_section(report, metrics, comps)
    _curation_section(report, curation, cfg)
    sec = report.section("Timings")
    sec.table(["step", "seconds (this run; 0 = done earlier)"], [[k, v] for k, v in timings.items()])
    return report.write(cfg.out / "report.html")
