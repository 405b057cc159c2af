"""Data mixtures: several JSONL sources, each capped (LLaVA-YAML style) and drawn by weight with a seed.

A source is one native JSONL file. Its *pool* is the set of records it offers after its cap:

- ``all`` (default): every valid record;
- ``first:N`` / ``end:N``: the first / last N valid records;
- ``random:N``: N valid records chosen with the mixture seed;
- N may be a count (``1000``) or a percentage (``10%``, rounded up, as LLaVA-OneVision does); a bare
  ``N`` or ``N%`` means ``random:N`` / ``random:N%``.

One *epoch* of the mixture is an ordered list of ``epoch_size`` draws (source, record). With no weights,
every pool record appears once. With weights, each source gets exactly its share of the epoch (largest
remainder rounding), drawn without replacement from a fresh permutation of its pool, going round the
pool again when its share is larger than the pool (up-sampling). The draws of all sources are then
interleaved in a random order that keeps every source near its share in every prefix of the epoch
(jittered systematic sampling), so a run shorter than an epoch also sees the configured mix. Epoch ``e`` uses the generator seeded with ``derive_seed(seed, "epoch", e)``, so the stream
of draws is a pure function of the config: any number of workers or ranks, and a resumed run, see the same
order. Apollo's text / image / multi-image / video shares and Sparrow's 2:1 video-to-synthetic ratio
are source weights.

The index holds only byte offsets and a media kind per record (``Sample.media_kind``: text, image,
multi-image or video, Apollo's data buckets); records are parsed when drawn, so memory stays small for
large files.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.paths import resolve_path
from sparrow.records import RecordError, Sample, check_media_paths
from sparrow.train.seeds import derive_seed

MEDIA_KINDS = ("text", "image", "multi-image", "video")


class MixtureError(ValueError):
    """A mixture config cannot be used (missing file, bad cap, bad weights)."""


@dataclass
class SourceConfig:
    """One source of a mixture. ``path`` is relative to the data root (or absolute). ``weight`` None
    means "natural" (proportional to the pool size); give weights to all sources or to none.
    ``sampling`` overrides fields of the stage's frame-sampling config for this source only.
    ``optional``: a missing file drops the source (the report says so) instead of failing, e.g.
    synthetic data that has not been generated yet."""

    path: str
    name: str | None = None
    weight: float | None = None
    cap: str = "all"
    sampling: dict[str, Any] | None = None
    optional: bool = False

    @property
    def label(self) -> str:
        return self.name or Path(self.path).stem


@dataclass
class MixtureConfig:
    """Sources, seed and (optionally) the number of draws in one epoch (default: the sum of pool
    sizes, so "1 epoch" has as many samples as the capped data)."""

    sources: list[SourceConfig] = field(default_factory=list)
    seed: int = 0
    epoch_size: int | None = None

    @classmethod
    def from_dict(cls, d: Any) -> MixtureConfig:
        if isinstance(d, list):
            d = {"sources": d}
        if not isinstance(d, dict):
            raise MixtureError(f"mixture must be a mapping or a list of sources, got {type(d).__name__}")
        unknown = sorted(set(d) - {"sources", "seed", "epoch_size"})
        if unknown:
            raise MixtureError(f"unknown mixture key(s) {unknown}; known: sources, seed, epoch_size")
        sources = []
        for i, s in enumerate(d.get("sources") or []):
            if isinstance(s, str):
                s = {"path": s}
            if not isinstance(s, dict) or "path" not in s:
                raise MixtureError(f"mixture source #{i} needs a 'path'")
            bad = sorted(set(s) - {"path", "name", "weight", "cap", "sampling", "optional"})
            if bad:
                raise MixtureError(f"unknown key(s) {bad} in mixture source {s.get('path')!r}")
            sources.append(SourceConfig(**s))
        if not sources:
            raise MixtureError("a mixture needs at least one source")
        return cls(sources=sources, seed=int(d.get("seed", 0)), epoch_size=d.get("epoch_size"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [
                {
                    k: v
                    for k, v in vars(s).items()
                    if v is not None and v is not False and not (k == "cap" and v == "all")
                }
                for s in self.sources
            ],
            "seed": self.seed,
            "epoch_size": self.epoch_size,
        }


_CAP = re.compile(r"^(?:(first|end|random):)?\s*(\d+(?:\.\d+)?)\s*(%?)$")


def parse_cap(cap: str | int | None, n: int) -> tuple[str, int]:
    """``(mode, count)`` of a cap applied to ``n`` records; mode is all / first / end / random."""
    if cap is None or (isinstance(cap, str) and cap.strip().lower() == "all"):
        return "all", n
    m = _CAP.match(str(cap).strip().lower())
    if not m:
        raise MixtureError(
            f"bad cap {cap!r}: use all, first:N, end:N, random:N, N or N% (N may be a percentage)"
        )
    mode, number, pct = m.group(1) or "random", float(m.group(2)), m.group(3)
    if pct:
        if number > 100:
            raise MixtureError(f"bad cap {cap!r}: a percentage cannot exceed 100%")
        count = math.ceil(number * n / 100)
    else:
        if number != int(number):
            raise MixtureError(f"bad cap {cap!r}: a count must be a whole number")
        count = int(number)
    return mode, min(count, n)


@dataclass
class IndexedSource:
    """A source after indexing: byte offsets and media kinds of its pool, and what was rejected."""

    config: SourceConfig
    path: Path
    offsets: np.ndarray  # int64 byte offset of each pool record
    media_kinds: np.ndarray  # int8 index into MEDIA_KINDS
    lines_total: int
    valid_total: int
    bad_lines: list[dict[str, Any]]
    cap_mode: str

    @property
    def name(self) -> str:
        return self.config.label

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, i: int) -> Sample:
        """Parse pool record ``i`` (raises RecordError if it no longer parses)."""
        with self.path.open("rb") as f:
            f.seek(int(self.offsets[i]))
            line = f.readline()
        try:
            return Sample.from_dict(json.loads(line))
        except json.JSONDecodeError as e:
            raise RecordError(
                f"{self.path.name}: invalid JSON at byte {int(self.offsets[i])}: {e.msg}"
            ) from e


def index_source(
    cfg: SourceConfig, data_root: str | os.PathLike, seed: int, media_root: str | os.PathLike | None = None
) -> IndexedSource:
    """Read a source file once, keep offsets of its valid records, then apply the cap. Media paths must
    stay inside the file's folder, or inside ``media_root`` when one is given (``sparrow mix``)."""
    path = resolve_path(cfg.path, data_root)
    if not path.is_file():
        raise MixtureError(f"mixture source {cfg.label!r}: file {str(path)!r} not found")
    offsets: list[int] = []
    kinds: list[int] = []
    bad: list[dict[str, Any]] = []
    total = 0
    with path.open("rb") as f:
        pos = 0
        for lineno, raw in enumerate(f, 1):
            start, pos = pos, pos + len(raw)
            if not raw.strip():
                continue
            total += 1
            try:
                sample = Sample.from_dict(json.loads(raw))
                check_media_paths(sample, path.parent, confine=media_root)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                bad.append({"source": cfg.label, "line": lineno, "reason": f"invalid JSON: {e}"})
                continue
            except RecordError as e:
                bad.append({"source": cfg.label, "line": lineno, "reason": str(e)})
                continue
            offsets.append(start)
            kinds.append(MEDIA_KINDS.index(sample.media_kind))
    off = np.asarray(offsets, dtype=np.int64)
    kind = np.asarray(kinds, dtype=np.int8)
    mode, count = parse_cap(cfg.cap, len(off))
    if mode == "first":
        keep = np.arange(count)
    elif mode == "end":
        keep = np.arange(len(off) - count, len(off))
    elif mode == "random":
        # Seeded by the mixture seed and the source label so adding a source leaves the others' picks alone.
        rng = np.random.default_rng(derive_seed(seed, "cap", cfg.label))
        keep = np.sort(rng.choice(len(off), size=count, replace=False))
    else:
        keep = np.arange(len(off))
    return IndexedSource(cfg, path, off[keep], kind[keep], total, len(off), bad, mode)


def _first_bad(bad_lines: list[dict[str, Any]]) -> str:
    """Why the first rejected line was rejected, with the option that helps when media lie outside."""
    if not bad_lines:
        return ""
    b = bad_lines[0]
    hint = (
        "; pass --media-root with a folder that holds them"
        if "outside the dataset root" in b["reason"]
        else ""
    )
    return f" ({b['source']} line {b['line']}: {b['reason']}{hint})"


def _quotas(weights: list[float], total: int) -> list[int]:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder, ties by order)."""
    s = sum(weights)
    exact = [w * total / s for w in weights]
    base = [math.floor(x) for x in exact]
    rest = total - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:rest]:
        base[i] += 1
    return base


class Mixture:
    """The indexed sources of a mixture and its deterministic stream of draws."""

    def __init__(
        self, config: MixtureConfig, data_root: str | os.PathLike, media_root: str | os.PathLike | None = None
    ):
        self.missing = [
            s.label for s in config.sources if s.optional and not resolve_path(s.path, data_root).is_file()
        ]
        present = [s for s in config.sources if s.label not in self.missing]
        if not present:
            raise MixtureError(f"no mixture source file exists (missing: {self.missing})")
        self.config = replace(config, sources=present)
        self.sources = [index_source(s, data_root, config.seed, media_root) for s in present]
        weights = [s.weight for s in present]
        if any(w is None for w in weights) and any(w is not None for w in weights):
            raise MixtureError("give a weight to every mixture source or to none")
        if any(w is not None and (not math.isfinite(w) or w < 0) for w in weights):
            raise MixtureError("mixture weights must be finite and >= 0")
        sizes = [len(s) for s in self.sources]
        if all(w is None for w in weights):
            weights = [float(n) for n in sizes]
        for s, w in zip(self.sources, weights, strict=True):
            if w and not len(s):
                raise MixtureError(
                    f"mixture source {s.name!r} has weight {w} but no valid records{_first_bad(s.bad_lines)}"
                )
        if sum(weights) <= 0:
            first = _first_bad([b for s in self.sources for b in s.bad_lines])
            raise MixtureError(
                f"the mixture has no records to draw (all pools empty or all weights 0){first}"
            )
        self.weights = [float(w) for w in weights]
        self.epoch_size = int(config.epoch_size) if config.epoch_size else sum(sizes)
        if self.epoch_size <= 0:
            raise MixtureError("mixture epoch_size must be positive")
        self.quotas = _quotas(self.weights, self.epoch_size)
        self._cache: tuple[int, np.ndarray] | None = None

    def epoch(self, e: int) -> np.ndarray:
        """The draws of epoch ``e``: int64 array (epoch_size, 2) of (source index, pool index)."""
        if self._cache is not None and self._cache[0] == e:
            return self._cache[1]
        rng = np.random.default_rng(derive_seed(self.config.seed, "epoch", e))
        parts, keys = [], []
        for si, (src, q) in enumerate(zip(self.sources, self.quotas, strict=True)):
            if q == 0:
                continue
            reps = -(-q // len(src))
            idx = np.concatenate([rng.permutation(len(src)) for _ in range(reps)])[:q]
            parts.append(np.stack([np.full(q, si, dtype=np.int64), idx.astype(np.int64)], axis=1))
            # Jittered systematic interleaving: the j-th draw of a source lands near j / q of the
            # epoch, so every prefix of the stream (a run shorter than an epoch) keeps the shares.
            keys.append((np.arange(q) + rng.random(q)) / q)
        draws = np.concatenate(parts)
        draws = draws[np.argsort(np.concatenate(keys), kind="stable")]
        self._cache = (e, draws)
        return draws

    def draw(self, position: int) -> tuple[int, int]:
        """(source index, pool index) at a global stream position (epochs follow one another)."""
        e, i = divmod(int(position), self.epoch_size)
        si, pi = self.epoch(e)[i]
        return int(si), int(pi)

    def report(self, drawn: int, skipped: dict[str, int] | None = None) -> dict[str, Any]:
        """What the first ``drawn`` stream positions hold, per source and per media kind, against the
        configured shares; ``skipped`` counts per source the draws the processor rejected."""
        skipped = skipped or {}
        counts = np.zeros(len(self.sources), dtype=np.int64)
        unique: list[set[int]] = [set() for _ in self.sources]
        by_kind = np.zeros((len(self.sources), len(MEDIA_KINDS)), dtype=np.int64)
        done = 0
        e = 0
        while done < drawn:
            d = self.epoch(e)[: drawn - done]
            for si in range(len(self.sources)):
                sel = d[d[:, 0] == si, 1]
                counts[si] += len(sel)
                unique[si].update(sel.tolist())
                by_kind[si] += np.bincount(self.sources[si].media_kinds[sel], minlength=len(MEDIA_KINDS))
            done += len(d)
            e += 1
        wsum = sum(self.weights)
        sources = []
        for si, src in enumerate(self.sources):
            sources.append(
                {
                    "name": src.name,
                    "path": str(src.path),
                    "cap": src.config.cap,
                    "lines": src.lines_total,
                    "valid": src.valid_total,
                    "bad_lines": len(src.bad_lines),
                    "pool": len(src),
                    "target_share": self.weights[si] / wsum,
                    "drawn": int(counts[si]),
                    "drawn_share": float(counts[si]) / drawn if drawn else 0.0,
                    "unique_drawn": len(unique[si]),
                    "repeats": int(counts[si]) - len(unique[si]),
                    "skipped": int(skipped.get(src.name, 0)),
                    "by_media_kind": {
                        m: int(by_kind[si, k]) for k, m in enumerate(MEDIA_KINDS) if by_kind[si, k]
                    },
                }
            )
        kind_total = by_kind.sum(axis=0)
        return {
            "seed": self.config.seed,
            "epoch_size": self.epoch_size,
            "drawn": int(drawn),
            "epochs": drawn / self.epoch_size,
            "missing_sources": list(self.missing),
            "sources": sources,
            "media_kinds": {
                m: {"drawn": int(kind_total[k]), "share": float(kind_total[k]) / drawn if drawn else 0.0}
                for k, m in enumerate(MEDIA_KINDS)
                if kind_total[k]
            },
        }
