"""Checkpoints of a run: the model (a ``load_pretrained`` directory) and the trainer state next to it.

The trainer state (``trainer_state.pt``, read with ``weights_only=True``) holds the optimizer, the
scheduler, the loss (AdaTaiLr) state, every process's RNG state, the skipped-sample counts and the data
position (stage, step). The data stream is a pure function of the recipe (``sparrow.train.data``), so
loading a checkpoint into a fresh process continues the run exactly where it stopped.

Under FSDP the weights and the optimizer state are gathered into full (unsharded) state dicts on the
main process, so a checkpoint does not depend on the number of processes that wrote it.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from sparrow.adapters import load_pretrained as load_any
from sparrow.model import VideoLLM
from sparrow.model.lora import copy_adapters
from sparrow.train import distributed as D
from sparrow.train.losses import AdaTaiLr
from sparrow.train.rundir import STATE_FILE, TrainError
from sparrow.train.seeds import derive_seed

FORMAT = 1
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass
class TrainState:
    """What a stage's loop carries from step to step besides the weights."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ada: AdaTaiLr | None
    skipped: Counter[str]


def seed_stage(seed: int, k: int, rank: int, step: int = 0) -> None:
    """The torch RNG of stage ``k`` on ``rank``: a stage starts from a known state so that a run resumed
    at a stage boundary draws the same dropout masks; ranks get independent streams."""
    torch.manual_seed(derive_seed(seed, "stage", k, rank, step))


def load_weights(model: nn.Module, ckpt_dir: Path) -> None:
    """Copy a ``load_pretrained`` checkpoint's weights into ``model`` (before any FSDP sharding); LoRA
    adapters the checkpoint carries are added to ``model`` first, so a resumed stage continues them."""
    with torch.random.fork_rng(devices=[]):  # building the copy must not move the training RNG
        loaded, _ = load_any(ckpt_dir)  # Sparrow's own format or an HF-native one (sparrow.adapters)
        copy_adapters(loaded, model)
    model.load_state_dict(loaded.state_dict(), strict=True)


class ModelSaver:
    """Writes the model as a ``load_pretrained`` checkpoint (collective under FSDP: every process calls it)."""

    def __init__(self, info: D.DistInfo):
        self.info = info
        self._shadow: nn.Module | None = None  # an unsharded copy to save from, built once per run

    def save(self, model: nn.Module, path: Path, processor: Any) -> None:
        if not D.is_fsdp(model):
            if self.info.is_main:
                model.save_pretrained(path, processor=processor)
            return
        sd = get_model_state_dict(model, options=_FULL)
        if not self.info.is_main:
            return
        if self._shadow is None:
            with torch.random.fork_rng(devices=[]):
                self._shadow = VideoLLM(processor.cfg, tokenizer=processor.tokenizer)
        self._shadow.load_state_dict(sd, strict=True)
        self._shadow.save_pretrained(path, processor=processor)


def save_checkpoint(
    path: Path, model: nn.Module, state: TrainState, where: dict[str, Any], info: D.DistInfo
) -> None:
    """Write ``trainer_state.pt`` into the (already saved) model checkpoint ``path``. ``where`` is the
    data position: ``stage`` (index), ``stage_name``, ``step`` and ``batch`` (global batch size).
    Collective: every process gathers its share of the optimizer state and its RNG."""
    opt_state = get_optimizer_state_dict(model, state.optimizer, options=_FULL)
    # Every rank's RNG (they differ: each rank drew dropout masks for its own batches).
    rng = D.gather_objects(_rng_state(info.device), info)
    if not info.is_main:
        return
    k, step = where["stage"], where["step"]
    trainer_state = {
        "format": FORMAT,
        "stage": k,
        "stage_name": where["stage_name"],
        "step": step,
        "data": {"stage": k, "step": step, "position": step * where["batch"], "batch": where["batch"]},
        "optimizer": opt_state,
        "scheduler": state.scheduler.state_dict(),
        "loss": state.ada.state_dict() if state.ada is not None else None,
        "rng": {"ranks": rng},
        "skipped": dict(state.skipped),
        # CPU float sums split across threads: another count on resume changes the last digits.
        "threads": torch.get_num_threads(),
    }
    torch.save(trainer_state, path / STATE_FILE)


def publish(tmp: Path, final: Path) -> None:
    """Move a complete checkpoint into place (a kill before this leaves only a temporary directory)."""
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def load_checkpoint(path: Path) -> dict[str, Any]:
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise TrainError(f"checkpoint {path}: format {state.get('format')} is not {FORMAT}")
    return state


def restore(saved: dict[str, Any], model: nn.Module, state: TrainState, seed: int, info: D.DistInfo) -> None:
    """Load a checkpoint's trainer state into a stage that is about to go on from it."""
    set_optimizer_state_dict(
        model, state.optimizer, saved["optimizer"], options=StateDictOptions(full_state_dict=True)
    )
    state.scheduler.load_state_dict(saved["scheduler"])
    if state.ada is not None and saved.get("loss"):
        state.ada.load_state_dict(saved["loss"])
    state.skipped.update(saved.get("skipped") or {})
    ranks = saved["rng"]["ranks"]
    if len(ranks) != info.world_size:
        # Another process count: the data stream is the same (positions are global), but dropout
        # masks cannot be; seed each rank from where the run stands.
        seed_stage(seed, saved["stage"], info.rank, saved["step"])
        return
    rng = ranks[info.rank]
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and info.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], info.device)
    py = random.getstate()
    random.setstate((py[0], tuple(rng["python"]), py[2]))


def thread_change(was: int | None, device: torch.device) -> str | None:
    """A one-line note when a CPU run resumes with another thread count than the state it goes on from
    was made with (the run goes on, but no longer bit for bit as an uninterrupted one); None otherwise."""
    now = torch.get_num_threads()
    if device.type != "cpu" or not isinstance(was, int) or was == now:
        return None
    return (
        f"resumed with {now} CPU threads, saved with {was}: the run goes on, but its numbers will differ "
        f"from an uninterrupted run's in the last digits (pass --threads {was} to keep them exact)"
    )


def _rng_state(device: torch.device) -> dict[str, Any]:
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng
