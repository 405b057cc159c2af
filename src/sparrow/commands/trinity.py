"""``sparrow trinity``: quantity, diversity and quality of a caption set (VidDF's trinity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from sparrow.caption_metrics.trinity import TrinityConfig
from sparrow.commands._options import config_flags
from sparrow.ui import UsageError, err_console


@config_flags(TrinityConfig, skip=("vendi_sample", "min_f1"), paths=("encoder",))
def trinity(
    captions: Path = typer.Argument(
        ..., help="caption.json ({video_id: {start, end, text}}).", show_default=False
    ),
    reference: Path = typer.Option(None, "--reference", "-r", help="Ground-truth caption.json for quality."),
    compare: Path = typer.Option(
        None,
        "--compare",
        help="A second caption.json: bootstrap interval of CIDEr-D(CAPTIONS) - CIDEr-D(it).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the report as JSON here."),
    *,
    cfg: TrinityConfig,  # --self-bleu-sample, --vendi, --encoder, --seed
    resamples: int = typer.Option(2000, "--resamples", help="Bootstrap resamples for --compare."),
) -> None:
    """Report videos, captions and words per caption; vocabulary, distinct-1/2, self-BLEU and Vendi; and,
    with --reference, BLEU-4, ROUGE-L, CIDEr-D, the time offset of matched captions and (on the world's
    ground truth) slot accuracy. Malformed entries are listed and fail the command (exit 2)."""
    from sparrow.caption_metrics import cider_difference
    from sparrow.caption_metrics import trinity as measure
    from sparrow.captions import CaptionsError, read_captions
    from sparrow.ui import rows_table

    if compare is not None and reference is None:
        raise UsageError("--compare needs --reference")
    malformed: list[dict[str, Any]] = []

    def load(path: Path) -> dict[str, Any]:
        good, bad = read_captions(path)
        malformed.extend(bad)
        return {t.video_id: t for t in good}

    try:
        caps = load(captions)
        ref = load(reference) if reference is not None else None
        other = load(compare) if compare is not None else None
    except CaptionsError as e:
        raise UsageError(str(e)) from e
    report = measure(caps, ref, cfg)
    result = report.to_dict()
    rows = [
        [group, k, v]
        for group in ("quantity", "diversity", "quality", "slots")
        for k, v in (result[group] or {}).items()
    ]
    if other is not None and ref is not None:
        refs = {v: [t.paragraph()] for v, t in ref.items()}
        paragraphs = {v: t.paragraph() for v, t in caps.items()}
        iv = cider_difference(
            paragraphs, {v: t.paragraph() for v, t in other.items()}, refs, resamples, seed=cfg.seed
        )
        result["compare"] = {"against": str(compare), "cider_d_difference": iv.to_dict()}
        rows.append(["compare", "CIDEr-D difference", f"{iv.difference:.3f} [{iv.low:.3f}, {iv.high:.3f}]"])
    rows_table("sparrow trinity", ["group", "metric", "value"], [[g, k, _fmt(v)] for g, k, v in rows])
    if out is not None:
        from sparrow.io import atomic_write_text

        atomic_write_text(out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if malformed:
        for row in malformed:
            err_console.print(
                escape(f"malformed: {row['source']}: {row['id']}: {row['reason']}"),
                highlight=False,
                soft_wrap=True,
            )
        raise UsageError(f"{len(malformed)} malformed entries left out of the report (listed above)")


def _fmt(v: Any) -> str:
    if v is None:  # a metric that was not measured (--no-vendi)
        return "skipped"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def register(app: typer.Typer) -> None:
    app.command(name="trinity")(trinity)
