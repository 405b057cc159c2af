"""``sparrow mix``: draw a seeded training mix from sample files; write it for LLaVA, LLaMA-Factory, MiniCPM-V."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from sparrow.commands._options import config_flags, out_option, required_argument
from sparrow.mix import EXPORT_FORMATS, MixConfig
from sparrow.ui import UsageError


@config_flags(MixConfig, skip=("sources", "formats"), paths=("media_root",))
def mix_cmd(
    sources: list[str] = required_argument(
        "Sources as [NAME:]PATH=N (native JSONL); N is a count, or a weight with --by ratio."
    ),
    out: Path = out_option("Output directory; it must hold the sources' media (paths are rewritten)."),
    *,
    cfg: MixConfig,  # --by, --total, --seed, --name, --allow-repeats, --media-root
    fmt: list[str] = typer.Option(
        None,
        "--format",
        help=f"Training formats to write besides native JSONL: {', '.join(EXPORT_FORMATS)} "
        "(repeatable; default: all; 'native': native JSONL only).",
    ),
) -> None:
    """Draw a seeded mix, e.g. Sparrow's 10K captions + 10K QA + 10K pseudo-videos, and write NAME.jsonl,
    NAME.llava.json, NAME.sharegpt.json, NAME.minicpm.json and NAME.manifest.json into --out."""
    from sparrow.mix import MixError, parse_source_spec, write_mix
    from sparrow.ui import rows_table, summary_table

    try:
        config = replace(
            cfg,
            sources=[parse_source_spec(s) for s in sources],
            formats=tuple(f for f in fmt if f != "native") if fmt else cfg.formats,
        )
        result = write_mix(config, out)
    except MixError as e:
        raise UsageError(str(e)) from e
    m = result.manifest
    rows_table(
        f"sparrow mix (seed {m['seed']}, by {m['by']})",
        ["source", "requested", "available", "drawn", "repeats", "invalid lines"],
        [
            [s["name"], s["requested"], s["available"], s["drawn"], s["repeats"], len(s["invalid_lines"])]
            for s in m["sources"]
        ],
    )
    summary_table(
        "outputs",
        {o["file"]: f"{o['records']} records" for o in m["outputs"]}
        | {"manifest": str(result.manifest_path)},
    )


def register(app: typer.Typer) -> None:
    app.command(name="mix")(mix_cmd)
