"""Staged training of a video-LLM from a recipe: freezing, AdamW + cosine, accumulation, checkpoints, resume.

One run writes, under ``out``::

    run.json                           the recipe and --max-steps as run (a resume must use the same)
    stage{k}-{name}/                   the model after stage k (``sparrow.model.load_pretrained``)
    final/                             the model after the last stage
    checkpoints/stage{k}-step{n}/      periodic checkpoints: model + trainer_state.pt
    metrics.jsonl                      one line per optimizer step
    loss_stage{k}-{name}.png           loss curve of each stage
    mixture_report.json                what each stage actually drew, per source and per modality
    errors.jsonl                       rejected records and samples (the run goes on)

Loss normalisation: every micro-batch contributes the *sum* of its token losses; after the last
micro-batch of a step the gradients are divided by the number of supervised tokens of the whole
global batch (all micro-batches, all ranks). So a step's update is the same whether its samples ran
on one process with accumulation or on N processes, and long and short samples weigh per token.

Exact resume: a checkpoint holds the weights (safetensors), optimizer, scheduler, loss (AdaTaiLr)
and RNG state, and the data position (stage, step). The data stream is a pure function of the recipe
(see ``sparrow.train.data``), so on CPU a resumed run reproduces the uninterrupted loss curve.

The library never prints: pass ``progress`` (a callable taking an event dict) to follow a run.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sparrow.io import atomic_write_text
from sparrow.train import distributed as D
from sparrow.train.data import Collator, MixtureDataset, StepBatchSampler, make_loader, merge_sampling
from sparrow.train.losses import AdaTaiLr, cross_entropy, tailr_loss
from sparrow.train.mixture import Mixture
from sparrow.train.recipe import PARTS, Recipe, StageConfig

IGNORE_INDEX = -100
STATE_FILE = "trainer_state.pt"
STAGE_DONE = "stage_done.json"
FORMAT = 1

Progress = Callable[[dict[str, Any]], None]


class TrainError(RuntimeError):
    """A run cannot start or continue (output holds another run, bad data, ...)."""


@dataclass
class RunOptions:
    """How to run a recipe. ``max_steps`` caps every stage (quick runs); ``data_root`` is where the
    mixture's relative source paths point (default: the current directory)."""

    out: Path
    data_root: Path | None = None
    resume: bool = False
    max_steps: int | None = None
    device: str | None = None
    num_workers: int | None = None
    strategy: str | None = None
    progress: Progress | None = None
    threads: int | None = None  # torch CPU threads during the run (None: leave as is)


def lr_factor(step: int, total: int, warmup: int, min_ratio: float = 0.0) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def stage_dir_name(k: int, stage: StageConfig) -> str:
    return f"stage{k + 1}-{stage.name}"


def train(recipe: Recipe, opts: RunOptions) -> dict[str, Any]:
    """Run (or resume) every stage of ``recipe``; returns a summary dict."""
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    threads = torch.get_num_threads()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    info = D.init_distributed(opts.device)
    try:
        return Trainer(recipe, opts, info).run()
    finally:
        torch.set_num_threads(threads)
        if owns_group:
            D.shutdown(info)


def auto_threads(num_workers: int, world_size: int = 1) -> int:
    """CPU threads for the training process so that it and its loader workers fit the machine's cores.

    More threads than free cores makes every parallel op wait for a descheduled thread, which on a
    busy machine costs a scheduler time slice per op (10x slower steps were measured)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, world_size) - num_workers)


class Trainer:
    def __init__(self, recipe: Recipe, opts: RunOptions, info: D.DistInfo):
        self.recipe, self.opts, self.info = recipe, opts, info
        self.out = Path(opts.out)
        self.data_root = Path(opts.data_root) if opts.data_root is not None else Path.cwd()
        self.strategy = opts.strategy or recipe.strategy
        self.device = info.device
        bf16_ok = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.use_bf16 = recipe.precision == "bf16" or (recipe.precision == "auto" and bf16_ok)
        self.num_workers = recipe.num_workers if opts.num_workers is None else opts.num_workers
        self.model: nn.Module | None = None
        self.processor: Any = None
        self._shadow: nn.Module | None = None

    # ------------------------------------------------------------------------------------ events

    def _emit(self, event: str, **fields: Any) -> None:
        if self.opts.progress is not None and self.info.is_main:
            self.opts.progress({"event": event, **fields})

    # ------------------------------------------------------------------------------------- model

    def _model_config(self) -> Any:
        from sparrow.model import VideoLLMConfig

        m = self.recipe.model
        if isinstance(m, str):
            return VideoLLMConfig.from_yaml(self.recipe.resolve(m))
        cfg = VideoLLMConfig.from_dict(copy.deepcopy(m))
        for part in (cfg.vision, cfg.vision2, cfg.lm):
            if part is not None and part.path:
                part.path = str(self.recipe.resolve(part.path))
        if cfg.tokenizer not in (None, "tiny"):
            cfg.tokenizer = str(self.recipe.resolve(cfg.tokenizer))
        return cfg

    def _build_model(self) -> None:
        from sparrow.model import Processor, VideoLLM, load_pretrained

        # Same seed on every rank: random-init weights are identical before DDP / FSDP sees them.
        torch.manual_seed(self.recipe.seed)
        if self.recipe.init_from:
            model, processor = load_pretrained(self.recipe.resolve(self.recipe.init_from))
        else:
            cfg = self._model_config()
            processor = Processor(cfg)
            model = VideoLLM(cfg, tokenizer=processor.tokenizer)
        if self.recipe.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        self.model, self.processor = model.to(self.device), processor

    def _load_weights(self, ckpt_dir: Path) -> None:
        from sparrow.model import load_pretrained

        with torch.random.fork_rng(devices=[]):  # building the copy must not move the training RNG
            loaded, _ = load_pretrained(ckpt_dir)
        self.model.load_state_dict(loaded.state_dict(), strict=True)
        del loaded

    def _full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The whole model's weights on the main process (gathered under FSDP), else None."""
        if D.is_fsdp(self.model):
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            sd = get_model_state_dict(
                self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
            )
            return sd if self.info.is_main else None
        return self.model.state_dict() if self.info.is_main else None

    def _save_model(self, path: Path, processor: Any) -> None:
        """Write a ``load_pretrained`` checkpoint into ``path`` (collective under FSDP)."""
        sd = self._full_state_dict()
        if not self.info.is_main:
            return
        model = self.model
        if D.is_fsdp(self.model):
            if self._shadow is None:
                from sparrow.model import VideoLLM

                with torch.random.fork_rng(devices=[]):
                    self._shadow = VideoLLM(self.processor.cfg, tokenizer=self.processor.tokenizer)
            self._shadow.load_state_dict(sd, strict=True)
            model = self._shadow
        model.save_pretrained(path, processor=processor)

    # ------------------------------------------------------------------------------- run layout

    def _prepare_out(self) -> None:
        run = {"recipe": {k: v for k, v in self.recipe.to_dict().items() if k != "base_dir"}}
        run["max_steps"] = self.opts.max_steps
        run_json = json.dumps(run, indent=2, sort_keys=True, default=str) + "\n"
        error: str | None = None
        if self.info.is_main:
            saved = self.out / "run.json"
            # A run has started once a step is logged; a run.json alone (a start that failed on its
            # inputs) is simply replaced.
            started = (self.out / "metrics.jsonl").exists()
            if started and not self.opts.resume:
                error = f"{self.out} already holds a training run; pass --resume to continue it or choose another --out"
            elif started and saved.exists() and saved.read_text(encoding="utf-8") != run_json:
                error = (
                    f"{self.out} was started with a different recipe or --max-steps; "
                    "resume it with the same ones (or choose another --out)"
                )
            else:
                self.out.mkdir(parents=True, exist_ok=True)
                atomic_write_text(saved, run_json)
        error = D.broadcast_object(error, self.info)
        if error:
            raise TrainError(error)

    def _resume_point(self) -> tuple[int, int, Path | None]:
        """(stage index, step, directory to load weights from) where this run goes on."""
        if not self.opts.resume:
            return 0, 0, None
        stages = self.recipe.stages
        k = 0
        while k < len(stages) and (self.out / stage_dir_name(k, stages[k]) / STAGE_DONE).exists():
            k += 1
        if k == len(stages):
            return k, 0, self.out / stage_dir_name(k - 1, stages[k - 1])
        ckpts = self._checkpoints(k)
        if ckpts:
            step, path = ckpts[-1]
            return k, step, path
        return k, 0, (self.out / stage_dir_name(k - 1, stages[k - 1])) if k > 0 else None

    def _checkpoints(self, k: int) -> list[tuple[int, Path]]:
        root = self.out / "checkpoints"
        found = []
        prefix = f"stage{k + 1}-step"
        if root.is_dir():
            for p in root.iterdir():
                if p.name.startswith(prefix) and (p / STATE_FILE).exists():
                    found.append((int(p.name[len(prefix) :]), p))
        return sorted(found)

    def _truncate_logs(self, k: int, step: int) -> None:
        """Drop metric and error lines written after the checkpoint a resumed run goes on from."""
        for name in ("metrics.jsonl", "errors.jsonl"):
            path = self.out / name
            if not path.exists():
                continue
            keep = []
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                s, n = int(row.get("stage", 0)), int(row.get("step", 0))
                if s < k + 1 or (s == k + 1 and n <= step):
                    keep.append(line)
            atomic_write_text(path, "".join(x + "\n" for x in keep))

    def _append(self, name: str, rows: list[dict[str, Any]]) -> None:
        if rows and self.info.is_main:
            with (self.out / name).open("a", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")

    # --------------------------------------------------------------------------------------- run

    def _check_sources(self) -> None:
        """Fail before any training if a stage's required source file is missing (not at stage 3)."""
        for stage in self.recipe.stages:
            for src in stage.mixture.sources:
                path = Path(src.path).expanduser()
                path = path if path.is_absolute() else self.data_root / path
                if not src.optional and not path.is_file():
                    raise TrainError(
                        f"stage {stage.name!r}: mixture source {src.label!r}: file {str(path)!r} not found "
                        "(is --data-root right?)"
                    )

    def run(self) -> dict[str, Any]:
        self._check_sources()
        self._prepare_out()
        self._build_model()
        start_stage, start_step, load_dir = self._resume_point()
        if load_dir is not None:
            self._load_weights(load_dir)
        if self.info.is_main and self.opts.resume:
            self._truncate_logs(start_stage, start_step)
        D.barrier(self.info)
        if self.info.enabled and self.strategy == "fsdp":
            D.apply_fsdp(self.model, mixed_bf16=False)
        state = None
        if start_step > 0 and load_dir is not None:
            state = torch.load(load_dir / STATE_FILE, map_location="cpu", weights_only=True)
        summary: dict[str, Any] = {"stages": [], "out": str(self.out)}
        t0 = time.perf_counter()
        for k, stage in enumerate(self.recipe.stages):
            if k < start_stage:
                continue
            result = self._run_stage(
                k, stage, start_step if k == start_stage else 0, state if k == start_stage else None
            )
            summary["stages"].append(result)
        final = self.out / "final"
        last = self.recipe.stages[-1]
        self._save_model(final, self._stage_processor(last))
        summary["final"] = str(final)
        summary["seconds"] = time.perf_counter() - t0
        self._emit("done", final=str(final))
        return summary

    def _stage_processor(self, stage: StageConfig) -> Any:
        """A processor whose config carries the stage's sampling (saved with the stage checkpoint)."""
        proc = copy.copy(self.processor)
        proc.cfg = replace(
            self.processor.cfg, sampling=merge_sampling(self.processor.cfg.sampling, stage.sampling)
        )
        return proc

    def _set_trainable(self, stage: StageConfig) -> dict[str, nn.Module]:
        parts = self.model.parts()
        for name in PARTS:
            if name not in parts:
                continue
            on = name in stage.trainable
            parts[name].requires_grad_(on)
            parts[name].train(on)  # frozen parts run in eval mode (no dropout noise in features)
        return parts

    def _optimizer(self, stage: StageConfig, parts: dict[str, nn.Module]) -> torch.optim.Optimizer:
        groups = []
        for name in stage.trainable:
            decay, no_decay = [], []
            for p in parts[name].parameters():
                if p.requires_grad:
                    (decay if p.ndim >= 2 else no_decay).append(p)
            lr = stage.lr[name]
            groups.append({"params": decay, "lr": lr, "weight_decay": stage.weight_decay, "part": name})
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "part": name})
        groups = [g for g in groups if g["params"]]
        if not groups:
            raise TrainError(f"stage {stage.name!r}: nothing to train")
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)

    def _loss_fn(
        self, stage: StageConfig
    ) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Any]:
        lc = stage.loss
        if lc.name == "ce":
            return (
                lambda z, y: cross_entropy(z, y, label_smoothing=lc.label_smoothing, reduction="sum")
            ), None
        if lc.name == "tailr":
            return (
                lambda z, y: tailr_loss(z, y, lc.gamma, lc.min_weight, lc.label_smoothing, reduction="sum")
            ), None
        ada = AdaTaiLr(
            lam=lc.lam,
            momentum=lc.momentum,
            gamma=lc.gamma,
            min_weight=lc.min_weight,
            label_smoothing=lc.label_smoothing,
            reduction="sum",
        )
        return ada, ada

    def _run_stage(
        self, k: int, stage: StageConfig, start_step: int, state: dict[str, Any] | None
    ) -> dict[str, Any]:
        name = stage_dir_name(k, stage)
        # Each stage starts from a known RNG state, so a run resumed at a stage boundary draws the same
        # dropout masks as an uninterrupted one (a mid-stage resume restores the checkpoint's RNG).
        # Ranks get different streams (independent dropout masks), each a pure function of (seed, stage, rank).
        torch.manual_seed(self.recipe.seed + 1000 * (k + 1) + 7919 * self.info.rank)
        mixture = Mixture(stage.mixture, self.data_root)
        steps = stage.num_steps(mixture.epoch_size)
        if self.opts.max_steps is not None:
            steps = min(steps, self.opts.max_steps)
        micro, accum = stage.micro_and_accum(self.info.world_size)
        parts = self._set_trainable(stage)
        fwd: nn.Module = self.model
        if self.info.enabled and self.strategy == "ddp":
            fwd = D.wrap_ddp(self.model, self.info)
        optimizer = self._optimizer(stage, parts)
        warmup = math.ceil(stage.warmup_ratio * steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, steps, warmup, stage.min_lr_ratio)
        )
        loss_fn, ada = self._loss_fn(stage)
        skipped: Counter[str] = Counter()
        if state is not None:
            self._load_state(state, optimizer, scheduler, ada, skipped)
        elif start_step == 0:
            bad = [{"stage": k + 1, "step": 0, **b} for s in mixture.sources for b in s.bad_lines]
            self._append("errors.jsonl", bad)

        stage_sampling = merge_sampling(self.processor.cfg.sampling, stage.sampling, f"stage {stage.name!r}")
        dataset = MixtureDataset(mixture, self.processor, stage_sampling, max_length=stage.seq_length)
        sampler = StepBatchSampler(
            steps, stage.batch_size, micro, accum, self.info.rank, self.info.world_size, start_step
        )
        loader = make_loader(
            dataset,
            sampler,
            Collator(self.processor, pack=stage.packing, max_length=stage.seq_length),
            num_workers=self.num_workers,
            seed=self.recipe.seed + k,
        )
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        every = stage.checkpoint_every or self.recipe.checkpoint_every
        self._emit(
            "stage",
            stage=k + 1,
            stages=len(self.recipe.stages),
            name=stage.name,
            steps=steps,
            start_step=start_step,
            trainable=list(stage.trainable),
            micro_batch=micro,
            grad_accum=accum,
            world_size=self.info.world_size,
        )
        losses: list[float] = []
        it = iter(loader)
        for step in range(start_step, steps):
            row = self._train_step(fwd, it, accum, loss_fn, trainable, stage, optimizer, k, step)
            scheduler.step()
            if ada is not None:
                row["gamma"] = ada.last_gamma  # the Γ this step used
                ada.step()  # folds the step's statistics (summed over ranks) into the average
                row["mean_weight"] = ada.last_mean_weight
            skipped.update(e["source"] for e in row.pop("_errors"))
            row.update({"stage": k + 1, "stage_name": stage.name, "step": step + 1, "steps": steps})
            losses.append(row["loss"])
            if (step + 1) % max(1, self.recipe.log_every) == 0 or step + 1 == steps:
                self._append("metrics.jsonl", [row])
            self._emit("step", **row)
            if every and (step + 1) % every == 0 and step + 1 < steps:
                self._checkpoint(k, stage, step + 1, optimizer, scheduler, ada, skipped)
        del it, loader

        out_dir = self.out / name
        self._save_model(out_dir, self._stage_processor(stage))
        if self.info.is_main:
            report = mixture.report(steps * stage.batch_size, dict(skipped))
            self._write_report(k, stage, report)
            self._plot(k, stage)
            done = {
                "stage": k + 1,
                "name": stage.name,
                "steps": steps,
                "final_loss": losses[-1] if losses else None,
            }
            atomic_write_text(out_dir / STAGE_DONE, json.dumps(done) + "\n")
            # The stage's periodic checkpoints are superseded by the stage checkpoint.
            for _, p in self._checkpoints(k):
                shutil.rmtree(p, ignore_errors=True)
        D.barrier(self.info)
        self._emit(
            "stage_done", stage=k + 1, name=stage.name, path=str(out_dir), skipped=sum(skipped.values())
        )
        return {
            "stage": k + 1,
            "name": stage.name,
            "steps": steps,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "skipped": sum(skipped.values()),
            "path": str(out_dir),
        }

    def _train_step(
        self,
        fwd: nn.Module,
        it: Any,
        accum: int,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        trainable: list[torch.nn.Parameter],
        stage: StageConfig,
        optimizer: torch.optim.Optimizer,
        k: int,
        step: int,
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        wait = 0.0
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        n_sup = n_tok = n_samples = 0
        errors: list[dict[str, Any]] = []
        fsdp = D.is_fsdp(self.model)
        for m in range(accum):
            tw = time.perf_counter()
            item = next(it)
            wait += time.perf_counter() - tw
            errors += item["errors"]
            batch = item["batch"]
            if batch is None:
                raise TrainError(
                    f"stage {stage.name!r} step {step + 1}: every sample of a micro-batch was rejected "
                    f"(first reason: {errors[0]['reason'] if errors else 'unknown'})"
                )
            n_samples += item["samples"]
            labels = batch.pop("labels")
            seq_index = batch.pop("seq_index", None)
            n_tok += int((seq_index >= 0).sum()) if seq_index is not None else labels.numel()
            target = labels[:, 1:].to(self.device, non_blocking=True)
            sel = target != IGNORE_INDEX
            n_sup += int(sel.sum())
            inputs = {
                key: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                for key, v in batch.items()
            }
            last = m == accum - 1
            if fsdp:
                self.model.set_requires_gradient_sync(last)
                sync = contextlib.nullcontext()
            elif hasattr(fwd, "no_sync") and not last:
                sync = fwd.no_sync()
            else:
                sync = contextlib.nullcontext()
            with sync:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                    logits = fwd(**inputs).logits
                # Only supervised positions reach the (fp32) loss: the full (B, L, V) logits are never upcast.
                loss = loss_fn(logits[:, :-1][sel], target[sel])
                loss.backward()
            loss_sum += loss.detach().double()
        stats = torch.tensor([float(loss_sum), n_sup, n_tok, n_samples, len(errors)], dtype=torch.float64)
        stats = D.all_reduce_sum(stats, self.info)
        total_sup = stats[1].item()
        grad_norm = float("nan")
        if total_sup > 0:
            # Gradients hold sum-of-token-losses (averaged over ranks by DDP/FSDP): make it the mean
            # over every supervised token of the global batch.
            scale = self.info.world_size / total_sup
            for p in trainable:
                if p.grad is not None:
                    p.grad.mul_(scale)
            clip = stage.grad_clip if stage.grad_clip else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(trainable, clip)
            grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if int(stats[4].item()) > 0:
            gathered = D.gather_objects(errors, self.info)
            errors = [e for part in gathered for e in part]
            self._append("errors.jsonl", [{"stage": k + 1, "step": step + 1, **e} for e in errors])
        elapsed = max(time.perf_counter() - t0, 1e-9)
        row: dict[str, Any] = {
            "loss": stats[0].item() / total_sup if total_sup else float("nan"),
            "lr": {g["part"]: g["lr"] for g in optimizer.param_groups},
            "grad_norm": grad_norm,
            "tokens": int(stats[2].item()),
            "supervised_tokens": int(total_sup),
            "samples": int(stats[3].item()),
            "skipped": int(stats[4].item()),
            "tokens_per_s": stats[2].item() / elapsed,
            "samples_per_s": stats[3].item() / elapsed,
            "data_wait_s": wait,
            "step_time_s": elapsed,
            "_errors": errors,
        }
        return row

    # ------------------------------------------------------------------------------ checkpoints

    def _optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        sd = get_optimizer_state_dict(self.model, optimizer, options=opts)
        return sd if self.info.is_main else None

    def _checkpoint(
        self,
        k: int,
        stage: StageConfig,
        step: int,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        ada: AdaTaiLr | None,
        skipped: Counter[str],
    ) -> None:
        root = self.out / "checkpoints"
        final = root / f"stage{k + 1}-step{step:07d}"
        tmp = root / f".tmp-stage{k + 1}-step{step:07d}"
        if self.info.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        opt_state = self._optimizer_state(optimizer)
        self._save_model(tmp, self._stage_processor(stage))
        # Every rank's RNG (they differ: each rank drew dropout masks for its own batches).
        rng = D.gather_objects(_rng_state(self.device), self.info)
        if self.info.is_main:
            state = {
                "format": FORMAT,
                "stage": k,
                "stage_name": stage.name,
                "step": step,
                "data": {
                    "stage": k,
                    "step": step,
                    "position": step * stage.batch_size,
                    "batch": stage.batch_size,
                },
                "optimizer": opt_state,
                "scheduler": scheduler.state_dict(),
                "loss": ada.state_dict() if ada is not None else None,
                "rng": {"ranks": rng},
                "skipped": dict(skipped),
            }
            torch.save(state, tmp / STATE_FILE)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            keep = max(1, self.recipe.keep_checkpoints)
            for _, old in self._checkpoints(k)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        D.barrier(self.info)
        self._emit("checkpoint", stage=k + 1, step=step, path=str(final))

    def _load_state(
        self,
        state: dict[str, Any],
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        ada: AdaTaiLr | None,
        skipped: Counter[str],
    ) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        if state.get("format") != FORMAT:
            raise TrainError(f"checkpoint format {state.get('format')} is not {FORMAT}")
        set_optimizer_state_dict(
            self.model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True)
        )
        scheduler.load_state_dict(state["scheduler"])
        if ada is not None and state.get("loss"):
            ada.load_state_dict(state["loss"])
        skipped.update(state.get("skipped") or {})
        ranks = state["rng"]["ranks"]
        if len(ranks) != self.info.world_size:
            # Another process count: the data stream is the same (positions are global), but dropout
            # masks cannot be; seed each rank from where the run stands.
            torch.manual_seed(
                self.recipe.seed + 1000 * (state["stage"] + 1) + 7919 * self.info.rank + state["step"]
            )
            return
        rng = ranks[self.info.rank]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        py = random.getstate()
        random.setstate((py[0], tuple(rng["python"]), py[2]))

    # ---------------------------------------------------------------------------------- reports

    def _write_report(self, k: int, stage: StageConfig, report: dict[str, Any]) -> None:
        path = self.out / "mixture_report.json"
        data: dict[str, Any] = {"stages": []}
        if path.exists():
            with contextlib.suppress(json.JSONDecodeError):
                data = json.loads(path.read_text(encoding="utf-8"))
        stages = [s for s in data.get("stages", []) if s.get("stage") != k + 1]
        stages.append({"stage": k + 1, "name": stage.name, **report})
        data["stages"] = sorted(stages, key=lambda s: s["stage"])
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")

    def _plot(self, k: int, stage: StageConfig) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = read_metrics(self.out / "metrics.jsonl", stage=k + 1)
        if not rows:
            return
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1.5)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (per supervised token)")
        ax.set_title(f"stage {k + 1}: {stage.name} ({', '.join(stage.trainable)}; {stage.loss.name})")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.out / f"loss_{stage_dir_name(k, stage)}.png")
        plt.close(fig)


def _rng_state(device: torch.device) -> dict[str, Any]:
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def read_metrics(path: str | Path, stage: int | None = None) -> list[dict[str, Any]]:
    """The metric rows of a run (optionally one stage's)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if stage is None or row.get("stage") == stage:
                rows.append(row)
    return rows
