"""``sparrow diversity``: instruction-diversity numbers and a projection plot per input file."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.commands._options import config_flags, out_option, required_argument
from sparrow.diversity import DiversityConfig
from sparrow.ui import UsageError


@config_flags(DiversityConfig, skip=("batch_size",), paths=("model",))
def diversity(
    inputs: list[Path] = required_argument(
        "Sample files: native JSONL, LLaVA / ShareGPT / MiniCPM-V JSON(L), or rows with 'question'."
    ),
    out: Path = out_option("Output directory for diversity.json and diversity.png."),
    *,
    cfg: DiversityConfig,  # --model ... --threads: one option per field
    label: list[str] = typer.Option(
        None, "--label", help="Name of each input in the report (repeat, in order)."
    ),
) -> None:
    """Embed the first user instruction of each sample and report, per input, the Vendi score, mean
    pairwise cosine distance, near-duplicate template clusters and the share of the largest; draw a 2-D
    projection coloured by input."""
    from sparrow.diversity import DiversityError, probe
    from sparrow.ui import err_console, rows_table

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
