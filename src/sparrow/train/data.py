"""The training data path: mixture stream -> processor -> micro-batches, deterministic and resumable.

Positions in a stage's mixture stream are global: optimizer step ``t`` consumes positions
``[t * B, (t + 1) * B)`` where ``B`` is the global batch size, and rank ``r`` takes micro-batch ``m`` of
that step at offset ``(m * world_size + r) * micro``. So the samples of a step do not depend on the
number of processes or workers, and resuming at step ``t`` is just starting the sampler there: the
data-position state of a checkpoint is ``(stage, step)``.

A sample the processor rejects (unreadable video, too long, bad record) is replaced by the sample at
the same slot of the next epoch (same rank, same position, so still deterministic), and the rejection
travels with the batch to the trainer, which writes it to ``errors.jsonl`` and counts it per source.
Training never stops for a bad sample.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from sparrow.model.collate import collate
from sparrow.records import Sample, resolve_media_path
from sparrow.train.mixture import Mixture
from sparrow.yamlio import unknown_keys

MAX_ATTEMPTS = 8


class DataError(RuntimeError):
    """The data cannot feed training (e.g. every sample of a batch was rejected)."""


def merge_sampling(base: Any, overrides: dict[str, Any] | None, where: str = "sampling") -> Any:
    """``base`` (a sampling dataclass) with ``overrides`` applied; unknown keys are an error."""
    if not overrides:
        return base
    unknown, known = unknown_keys(overrides, base)
    if unknown:
        raise DataError(f"{where}: unknown sampling key(s) {unknown}; known: {known}")
    return dataclasses.replace(base, **overrides)


class MixtureDataset(Dataset):
    """Map-style dataset over stream positions of a mixture: ``ds[pos]`` is the processed sample.

    ``processor(sample, root, sampling=..., max_length=...)`` turns a record into model inputs;
    ``sampling`` is the stage's sampling config, overridden per source by the source's ``sampling``.
    ``media_root``: media paths may lead anywhere inside it (as the mixture's index allowed).
    """

    def __init__(
        self,
        mixture: Mixture,
        processor: Any,
        sampling: Any = None,
        max_length: int | None = None,
        media_root: str | os.PathLike | None = None,
    ):
        self.mixture = mixture
        self.media_root = None if media_root is None else Path(media_root).resolve()
        self.processor = processor
        self.max_length = max_length
        self.sampling = [
            merge_sampling(sampling, s.config.sampling, f"source {s.name!r}")
            if sampling is not None
            else None
            for s in mixture.sources
        ]

    def __len__(self) -> int:
        return self.mixture.epoch_size

    def __getitem__(self, position: int) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        for attempt in range(MAX_ATTEMPTS):
            pos = int(position) + attempt * self.mixture.epoch_size
            si, pi = self.mixture.draw(pos)
            src = self.mixture.sources[si]
            sample_id = f"{src.name}#{pi}"
            try:
                sample = src.read(pi)
                sample_id = sample.id
                # Media paths are relative to the source's JSONL file.
                root: Path = src.path.parent
                if self.media_root is not None:
                    # The processor confines paths to the root it is given: hand it the media root and
                    # paths resolved (and confined there) from the file's folder.
                    sample = _anchored(sample, root, self.media_root)
                    root = self.media_root
                feats = self.processor(sample, root, sampling=self.sampling[si], max_length=self.max_length)
            except Exception as e:  # any per-sample failure is recorded, never fatal
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                errors.append({"id": sample_id, "source": src.name, "position": pos, "reason": reason})
                continue
            return {"feats": feats, "errors": errors}
        return {"feats": None, "errors": errors}


def _anchored(sample: Sample, root: Path, media_root: Path) -> Sample:
    """The sample with absolute media paths, resolved from ``root`` and refused outside ``media_root``."""

    def anchor(p: str) -> str:
        return str(resolve_media_path(root, p, confine=media_root))

    return dataclasses.replace(sample, media=[m.with_paths(anchor) for m in sample.media])


@dataclasses.dataclass
class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches (lists of stream positions) for steps ``[start_step, num_steps)``."""

    num_steps: int
    global_batch: int
    micro: int
    accum: int
    rank: int = 0
    world_size: int = 1
    start_step: int = 0

    def __post_init__(self) -> None:
        if self.micro * self.accum * self.world_size != self.global_batch:
            raise DataError(
                f"micro {self.micro} x accum {self.accum} x world {self.world_size} "
                f"!= global batch {self.global_batch}"
            )

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.num_steps):
            base = step * self.global_batch
            for m in range(self.accum):
                start = base + (m * self.world_size + self.rank) * self.micro
                yield list(range(start, start + self.micro))

    def __len__(self) -> int:
        return max(0, self.num_steps - self.start_step) * self.accum


class Collator:
    """Collates processed samples with ``sparrow.model.collate`` (packing optional), carrying the rejected
    samples' reasons along."""

    def __init__(self, processor: Any, pack: bool = False, max_length: int | None = None):
        self.processor, self.pack, self.max_length = processor, pack, max_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        good = [it for it in items if it["feats"] is not None]
        errors = [e for it in items for e in it["errors"]]
        batch = (
            collate([it["feats"] for it in good], self.processor.pad_token_id, self.pack, self.max_length)
            if good
            else None
        )
        return {"batch": batch, "samples": len(good), "errors": errors}


def _worker_init(_: int) -> None:
    # Each loader worker decodes video on one thread; parallelism comes from the workers.
    torch.set_num_threads(1)


def make_loader(
    dataset: MixtureDataset,
    sampler: StepBatchSampler,
    collator: Collator,
    num_workers: int = 1,
    seed: int = 0,
    prefetch_factor: int = 4,
) -> DataLoader:
    """A DataLoader yielding this rank's micro-batches in order. Its own generator keeps the global
    torch RNG untouched (so resumed runs draw the same dropout masks as uninterrupted ones)."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collator,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_worker_init if num_workers > 0 else None,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        persistent_workers=False,
    )
