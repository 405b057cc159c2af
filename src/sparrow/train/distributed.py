"""Process groups and model wrapping for multi-process training (DDP or FSDP2).

Launched by ``torchrun`` (the environment holds RANK / WORLD_SIZE / LOCAL_RANK), training joins a
process group: gloo on CPU, NCCL on GPU. Without those variables it runs as one process and nothing
here touches ``torch.distributed``.

FSDP2 (``torch.distributed.fsdp.fully_shard``) shards every transformer block it finds (the elements of
``layers`` module lists inside the vision tower and the LM) and then the whole model; the embeddings,
connector and heads live in the root group, which is gathered for the whole forward pass. That order
matters because the video-LLM calls the LM's embedding table directly, outside the LM's own forward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(device: str | None = None, local_rank: int = 0) -> torch.device:
    """``None`` / ``auto``: this process's GPU when CUDA is available, else the CPU."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    d = torch.device(device)
    if d.type == "cuda" and d.index is None:
        d = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return d


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group torchrun set up (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world <= 1:
        return DistInfo(0, 1, 0, dev, None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=dev if dev.type == "cuda" else None)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, dev, backend)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over processes (returned on its original device); a no-op for one process.
    NCCL only reduces GPU tensors, so CPU tensors travel through this process's GPU."""
    if not info.enabled:
        return t
    work = t.to(info.device) if info.backend == "nccl" else t
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(t.device)


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _blocks(model: nn.Module) -> list[nn.Module]:
    """Transformer blocks: the elements of every ``layers`` ModuleList (outermost lists only)."""
    found: list[nn.Module] = []
    taken: list[str] = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and name.split(".")[-1] == "layers":
            if any(name.startswith(prefix + ".") for prefix in taken):
                continue
            taken.append(name)
            found.extend(mod)
    return found


def apply_fsdp(model: nn.Module) -> nn.Module:
    """Shard ``model`` in place with FSDP2: each transformer block, then the root. Parameters stay fp32
    (bf16 is the trainer's autocast, not a sharding policy)."""
    from torch.distributed.fsdp import fully_shard

    for block in _blocks(model):
        fully_shard(block)
    fully_shard(model)
    return model


def wrap_ddp(model: nn.Module, info: DistInfo) -> nn.Module:
    """A DDP wrapper over the parameters that currently require grad (re-wrap when that changes)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [info.device.index] if info.device.type == "cuda" else None
    # Buffers (rotary tables) are identical on every rank: no need to sync them each forward pass.
    return DDP(model, device_ids=ids, forward_sync_buffers=False)


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)
