"""``sparrow mix``: draw a seeded training mix from several sample files and write it for any trainer.

Sparrow's recipe is 10K video captions + 10K video QA + 10K pseudo-videos (2:1 video to synthetic).
The draw is epoch 0 of a :class:`~sparrow.train.mixture.Mixture`, the code ``sparrow train`` samples
its sources with (one implementation): by *count*, each source gives exactly its number of records; by
*ratio*, the sources share ``total`` draws by weight (largest remainder, so the shares are exact).
Within a source the records are a seeded random subset, drawn without replacement unless repeats are
allowed, and the sources are interleaved so that every prefix of the mix keeps the shares.

Outputs, in the order of the draw: native JSONL, and LLaVA / ShareGPT (LLaMA-Factory) / MiniCPM-V JSON
arrays, with media paths rewritten relative to the output directory, and a manifest of what was drawn.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sparrow.formats import EXPORT_FORMATS, convert
from sparrow.io import atomic_write_text
from sparrow.records import RecordError, Sample, resolve_media_path
from sparrow.train.mixture import Mixture, MixtureConfig, MixtureError, SourceConfig

MIX_BY = ("count", "ratio")


class MixError(ValueError):
    """A mix cannot be drawn or written as asked (bad spec, too few records, a path outside the output)."""


@dataclass
class MixSource:
    """One input sample file (native JSONL) and its amount: a count (by count) or a weight (by ratio)."""

    path: str
    amount: float
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or Path(self.path).stem


@dataclass
class MixConfig:
    """What to draw. ``total`` (by ratio only) defaults to the largest mix the pools give without
    repeating a record. ``name`` prefixes the output files: NAME.jsonl, NAME.llava.json, ..."""

    sources: list[MixSource] = field(default_factory=list)
    by: str = "count"  # 'count': N records per source; 'ratio': N is a weight.
    total: int | None = None  # When mixing by ratio: records in all (default: the most without repeats).
    seed: int = 0  # Seed of the draw.
    formats: tuple[str, ...] = EXPORT_FORMATS
    name: str = "mix"  # Output file prefix.
    allow_repeats: bool = False  # Draw records twice when a source has fewer than asked (up-sampling).
    # Media paths may lead anywhere inside this folder (default: each source file's own folder), e.g.
    # refine's OUT/captions.jsonl pointing at ../videos.
    media_root: str | None = None

    def validate(self) -> None:
        if not self.sources:
            raise MixError("a mix needs at least one source")
        if self.by not in MIX_BY:
            raise MixError(f"mix by {self.by!r}: choose one of {', '.join(MIX_BY)}")
        if self.media_root is not None and not Path(self.media_root).is_dir():
            raise MixError(f"--media-root {self.media_root!r} is not a folder")
        bad = [f for f in self.formats if f not in EXPORT_FORMATS]
        if bad:
            raise MixError(f"unknown format(s) {bad}; choose from {', '.join(EXPORT_FORMATS)}")
        labels = [s.label for s in self.sources]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise MixError(f"two sources are both named {dupes[0]!r}; name them: NAME:PATH=N")
        for s in self.sources:
            if not math.isfinite(s.amount) or s.amount < 0:
                raise MixError(f"source {s.label!r}: the amount must be a number >= 0, got {s.amount}")
            if self.by == "count" and s.amount != int(s.amount):
                raise MixError(f"source {s.label!r}: a count must be a whole number, got {s.amount}")
        if sum(s.amount for s in self.sources) <= 0:
            raise MixError("the mix asks for nothing: every amount is 0")
        if self.total is not None and (self.by != "ratio" or self.total < 1):
            raise MixError("total is for --by ratio only and must be >= 1")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise MixError(f"bad mix name {self.name!r}: a plain file-name prefix such as 'mix'")


def parse_source_spec(spec: str) -> MixSource:
    """``[NAME:]PATH=N``: N is a count or a ratio weight (``--by``)."""
    head, sep, amount = spec.rpartition("=")
    if not sep or not head:
        raise MixError(f"source {spec!r}: write [NAME:]PATH=N, e.g. captions.jsonl=10000")
    name, colon, path = head.partition(":")
    if not colon:
        name, path = "", head
    try:
        value = float(amount)
    except ValueError:
        raise MixError(f"source {spec!r}: {amount!r} is not a number") from None
    return MixSource(path=path, amount=value, name=name or None)


@dataclass
class MixResult:
    """What was written: the manifest (also saved as NAME.manifest.json) and its path."""

    manifest: dict[str, Any]
    manifest_path: Path


def _largest_total(weights: list[float], pools: list[int]) -> int:
    """The most draws such that no source's share exceeds its pool (nothing drawn twice). At this total
    every exact share is <= its pool, and rounding a share up cannot pass an integer pool."""
    wsum = sum(weights)
    return min(math.floor(n * wsum / w) for w, n in zip(weights, pools, strict=True) if w > 0)


def build_mixture(config: MixConfig, data_root: str | os.PathLike = ".") -> Mixture:
    """The training mixture whose epoch 0 is this mix (also usable as a ``sparrow train`` mixture)."""
    config.validate()
    sources = [
        SourceConfig(path=s.path, name=s.label, weight=float(s.amount), cap="all") for s in config.sources
    ]
    total: int | None
    if config.by == "count":
        total = int(sum(s.amount for s in config.sources))
    elif config.total is not None:
        total = config.total
    else:
        # The default total depends on the pool sizes, known only after indexing: index once to size it.
        probe = _mixture(MixtureConfig(sources=sources, seed=config.seed, epoch_size=1), data_root, config)
        total = _largest_total([s.amount for s in config.sources], [len(s) for s in probe.sources])
        if total < 1:
            raise MixError("the sources hold too few records for these ratios (no record could be drawn)")
    mixture = _mixture(MixtureConfig(sources=sources, seed=config.seed, epoch_size=total), data_root, config)
    if not config.allow_repeats:
        for src, quota in zip(mixture.sources, mixture.quotas, strict=True):
            if quota > len(src):
                raise MixError(
                    f"source {src.name!r}: {quota} records requested, {len(src)} valid "
                    "(pass --allow-repeats to draw some twice)"
                )
    return mixture


def _mixture(config: MixtureConfig, data_root: str | os.PathLike, mix: MixConfig) -> Mixture:
    try:
        return Mixture(config, data_root, mix.media_root)
    except MixtureError as e:
        raise MixError(str(e)) from e


def relocate(sample: Sample, source_root: Path, out_dir: Path, media_root: str | None = None) -> Sample:
    """The sample with its media paths relative to ``out_dir``. A path escaping its source's root (or
    ``media_root``), or lying outside ``out_dir`` (readers confine media to the directory of the file),
    is refused."""

    def move(p: str) -> str:
        full = resolve_media_path(source_root, p, confine=media_root)
        rel = Path(os.path.relpath(full, out_dir))
        if rel.parts and rel.parts[0] == "..":
            raise MixError(
                f"record {sample.id!r}: media {p!r} lies outside the output directory {str(out_dir)!r}; "
                "write the mix into a directory that holds the sources' media"
            )
        return rel.as_posix()

    return replace(sample, media=[m.with_paths(move) for m in sample.media])


def _output_names(config: MixConfig) -> dict[str, str]:
    return {"native": f"{config.name}.jsonl", **{f: f"{config.name}.{f}.json" for f in config.formats}}


def _render(records: dict[str, list[str]]) -> dict[str, str]:
    """File texts: JSONL for native, a JSON array (one record per line) for the other formats."""
    out = {}
    for fmt, lines in records.items():
        if fmt == "native":
            out[fmt] = "".join(line + "\n" for line in lines)
        else:
            out[fmt] = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
    return out


def write_mix(config: MixConfig, out_dir: str | os.PathLike, data_root: str | os.PathLike = ".") -> MixResult:
    """Draw the mix and write NAME.jsonl, NAME.<format>.json and NAME.manifest.json into ``out_dir``.
    Nothing is written unless every drawn record converts to every requested format."""
    out = Path(out_dir).resolve()
    mixture = build_mixture(config, data_root)
    draws = mixture.epoch(0)
    # The mix is bounded by what was asked for, so its text is built in memory and each file is written
    # once, atomically: a failed conversion leaves no partial outputs behind.
    records: dict[str, list[str]] = {"native": [], **{f: [] for f in config.formats}}
    for si, pi in draws.tolist():
        src = mixture.sources[si]
        sample = relocate(src.read(pi), src.path.parent.resolve(), out, config.media_root)
        for fmt, lines in records.items():
            try:
                obj = convert(sample, fmt)
            except RecordError as e:
                raise MixError(f"record {sample.id!r} of {src.name!r} cannot be written as {fmt}: {e}") from e
            lines.append(json.dumps(obj, ensure_ascii=False))
    texts = _render(records)
    names = _output_names(config)
    out.mkdir(parents=True, exist_ok=True)
    outputs = []
    for fmt, text in texts.items():
        atomic_write_text(out / names[fmt], text)
        data = text.encode("utf-8")
        outputs.append(
            {
                "format": fmt,
                "file": names[fmt],
                "records": len(records[fmt]),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest = _manifest(config, mixture, len(draws), outputs)
    manifest_path = out / f"{config.name}.manifest.json"
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return MixResult(manifest, manifest_path)


def _manifest(
    config: MixConfig, mixture: Mixture, drawn: int, outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    report = mixture.report(drawn)
    sources = []
    for s, quota, r, src in zip(
        config.sources, mixture.quotas, report["sources"], mixture.sources, strict=True
    ):
        sources.append(
            {
                "name": r["name"],
                "path": s.path,
                "requested": int(s.amount) if config.by == "count" else quota,
                **({"ratio": s.amount} if config.by == "ratio" else {}),
                "available": r["pool"],
                "lines": r["lines"],
                "invalid_lines": [{"line": b["line"], "reason": b["reason"]} for b in src.bad_lines],
                "drawn": r["drawn"],
                "unique": r["unique_drawn"],
                "repeats": r["repeats"],
                "by_media_kind": r["by_media_kind"],
            }
        )
    return {
        "seed": config.seed,
        "by": config.by,
        "total": drawn,
        "allow_repeats": config.allow_repeats,
        "sources": sources,
        "media_kinds": report["media_kinds"],
        "outputs": outputs,
    }


__all__ = [
    "EXPORT_FORMATS",
    "MIX_BY",
    "MixConfig",
    "MixError",
    "MixResult",
    "MixSource",
    "build_mixture",
    "parse_source_spec",
    "relocate",
    "write_mix",
]
