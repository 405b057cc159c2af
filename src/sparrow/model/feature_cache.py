"""The frozen-encoder feature cache: a frozen vision tower's output per frame, computed once.

A frozen tower maps the same frame to the same features, so training epochs, evaluation conditions and
checkpoints that share the tower need not run it twice on one input. Entries are content-addressed:
the key of a frame hashes its pixel tensor (values, shape, dtype: the media, sampling and size all
end up in it) together with the tower's identity (its config, the dtype and device it runs in, the
autocast state, and a fingerprint of its weights). A cache therefore needs no cooperation from the
data loader and can never serve features of another input or of other weights.

The tower's weights are hashed once per (tower object, weight versions): an in-place update
(optimizer step, ``load_state_dict``) bumps a tensor's version, swapping a tensor changes its address,
and a strided sample of every tensor's values is part of the check too, so changed weights get a new
fingerprint. A tower that trains (in train mode, or any parameter requiring grad) is never served from
the cache (counted as ``bypassed``). ``VisionEncoder`` stays in eval mode under ``model.train()`` while
it is frozen, so a frozen tower is cached in training too.

Memory: an LRU over frames, bounded in bytes (features are kept on the CPU). Disk (optional): one
safetensors file per frame under ``disk_dir``, written atomically (temporary file + rename); never
evicted (delete the folder to reclaim it).
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

_SAMPLES_PER_TENSOR = 16  # values per weight tensor in the cheap change check


@dataclass
class CacheStats:
    hits: int = 0  # frames served from memory (or repeating a frame of the same call)
    disk_hits: int = 0  # frames served from disk
    misses: int = 0  # distinct frames the tower computed (and the cache stored)
    bypassed: int = 0  # frames of a trainable tower, never cached
    evictions: int = 0
    entries: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class FeatureCache:
    """``features(encoder, pixel_values, cfg)`` returns ``encoder(pixel_values)`` (``(F, ...)`` per
    frame), serving the frames it has seen with the same encoder identity from memory or disk."""

    def __init__(self, max_bytes: int = 1 << 30, disk_dir: str | os.PathLike | None = None):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self._mem: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self.stats = CacheStats()
        # encoder -> (weight signature, fingerprint); weak, so a freed tower never lends its entry.
        self._fingerprints: weakref.WeakKeyDictionary[nn.Module, tuple[Any, str]] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------------------- public

    def features(self, encoder: nn.Module, pixel_values: torch.Tensor, cfg: Any = None) -> torch.Tensor:
        """``encoder(pixel_values)``, per frame from the cache where possible. ``cfg``: the model config
        (its vision part is part of the identity)."""
        if self._trainable(encoder) or pixel_values.requires_grad or pixel_values.shape[0] == 0:
            self.stats.bypassed += int(pixel_values.shape[0])
            return encoder(pixel_values)
        ident = self.identity(encoder, pixel_values, cfg)
        host = pixel_values.detach().cpu()  # one device-to-host copy, not one per frame
        keys = [self._frame_key(ident, f) for f in host]
        counts = Counter(keys)
        found: dict[str, torch.Tensor] = {}
        for k in counts:
            hit = self._lookup(k)  # counts the first occurrence as a hit or a disk hit
            if hit is not None:
                found[k] = hit
        todo = [k for k in counts if k not in found]
        if todo:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            idx = torch.tensor([first[k] for k in todo], device=pixel_values.device)
            computed = encoder(pixel_values.index_select(0, idx))
            for k, feats in zip(todo, computed, strict=True):
                stored = feats.detach().to("cpu", copy=True).contiguous()
                self._remember(k, stored)
                self._write_disk(k, stored)
                found[k] = stored
        # Every frame is a miss (computed), a disk hit or a hit; repeats within a call are hits.
        self.stats.misses += len(todo)
        self.stats.hits += len(keys) - len(counts)
        out = torch.stack([found[k] for k in keys])
        return out.to(pixel_values.device)

    def identity(self, encoder: nn.Module, pixel_values: torch.Tensor, cfg: Any = None) -> str:
        """The encoder's identity digest for inputs like ``pixel_values``: config, run dtype and device,
        autocast state and weights."""
        dev = pixel_values.device.type
        autocast = torch.is_autocast_enabled(dev)
        parts = {
            "vision": _plain(getattr(cfg, "vision", None)),
            "vision2": _plain(getattr(cfg, "vision2", None)),
            "class": type(encoder).__qualname__,
            "device": dev,
            "autocast": str(torch.get_autocast_dtype(dev)) if autocast else None,
            "weights": self.fingerprint(encoder),
        }
        return hashlib.blake2b(
            json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=20
        ).hexdigest()

    def fingerprint(self, encoder: nn.Module) -> str:
        """A hash of every weight and buffer of ``encoder``, recomputed only when they may have changed."""
        sig = _weight_signature(encoder)
        memo = self._fingerprints.get(encoder)
        if memo is not None and memo[0] == sig:
            return memo[1]
        h = hashlib.blake2b(digest_size=20)
        for name, t in encoder.state_dict().items():
            h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
            h.update(_as_bytes(t))
        digest = h.hexdigest()
        self._fingerprints[encoder] = (sig, digest)
        return digest

    def clear(self) -> None:
        """Drop the in-memory entries (the disk folder is left as it is)."""
        self._mem.clear()
        self._bytes = 0
        self.stats.entries = self.stats.bytes = 0

    # ------------------------------------------------------------------------------ internals

    @staticmethod
    def _trainable(encoder: nn.Module) -> bool:
        return encoder.training or any(p.requires_grad for p in encoder.parameters())

    @staticmethod
    def _frame_key(ident: str, frame: torch.Tensor) -> str:
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{ident}:{tuple(frame.shape)}:{frame.dtype};".encode())
        h.update(_as_bytes(frame))
        return h.hexdigest()

    def _lookup(self, key: str) -> torch.Tensor | None:
        t = self._mem.get(key)
        if t is not None:
            self._mem.move_to_end(key)
            self.stats.hits += 1
            return t
        t = self._read_disk(key)
        if t is not None:
            self.stats.disk_hits += 1
            self._remember(key, t)
        return t

    def _remember(self, key: str, t: torch.Tensor) -> None:
        size = t.numel() * t.element_size()
        if size > self.max_bytes or key in self._mem:
            return
        while self._mem and self._bytes + size > self.max_bytes:
            _, old = self._mem.popitem(last=False)
            self._bytes -= old.numel() * old.element_size()
            self.stats.evictions += 1
        self._mem[key] = t
        self._bytes += size
        self.stats.entries, self.stats.bytes = len(self._mem), self._bytes

    def _disk_path(self, key: str) -> Path | None:
        return None if self.disk_dir is None else self.disk_dir / key[:2] / f"{key}.safetensors"

    def _read_disk(self, key: str) -> torch.Tensor | None:
        path = self._disk_path(key)
        if path is None or not path.is_file():
            return None
        try:
            return load_file(str(path))["features"]
        except (OSError, KeyError, ValueError, RuntimeError):
            return None  # unreadable: recompute (and rewrite) it

    def _write_disk(self, key: str, t: torch.Tensor) -> None:
        path = self._disk_path(key)
        if path is None or path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        save_file({"features": t}, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, path)


def _plain(cfg: Any) -> Any:
    return asdict(cfg) if is_dataclass(cfg) and not isinstance(cfg, type) else cfg


def _as_bytes(t: torch.Tensor) -> memoryview:
    """The raw bytes of a tensor (any dtype, bf16 included: numpy has no bf16, uint8 it has)."""
    flat = t.detach().reshape(-1).contiguous().cpu()
    return memoryview(flat.view(torch.uint8).numpy())


def _weight_signature(encoder: nn.Module) -> tuple[Any, ...]:
    """Cheap: every tensor's name, address and version counter, plus a strided sample of its values."""
    names, meta, samples = [], [], []
    for name, t in encoder.state_dict(keep_vars=True).items():
        names.append(name)
        meta.append((t.data_ptr(), t._version, tuple(t.shape)))
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // _SAMPLES_PER_TENSOR)
        samples.append(flat[::step][:_SAMPLES_PER_TENSOR].float())
    values = torch.cat(samples).cpu().tolist() if samples else []
    return tuple(names), tuple(meta), tuple(values)
