"""Staged training of a video-LLM from a recipe: freezing, AdamW + cosine, accumulation, checkpoints, resume.

``train(recipe, RunOptions(out=...))`` runs every stage of the recipe; stage k starts from stage k-1's
weights. Per stage: seed, index the mixture, freeze, build optimizer / schedule / loss, then the step
loop (``Trainer._run_stage``), reading top to bottom: one optimizer step (``sparrow.train.step``: the
update, the schedule and AdaTaiLr's Γ), the logs, a checkpoint now and then; at the end the stage's model
and reports.

What the run writes is described in ``sparrow.train.rundir``; checkpoints and exact resume in
``sparrow.train.checkpoint``; the data stream in ``sparrow.train.data``. The library never prints: pass
``progress`` (a callable taking an event dict) to follow a run.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from sparrow.adapters import lm_width
from sparrow.model import Processor, VideoLLM
from sparrow.model.feature_cache import FeatureCache
from sparrow.model.media import ClipCache
from sparrow.paths import resolve_path
from sparrow.report import loss_curve
from sparrow.train import distributed as D
from sparrow.train.checkpoint import (
    ModelSaver,
    TrainState,
    load_checkpoint,
    load_weights,
    publish,
    restore,
    save_checkpoint,
    seed_stage,
    thread_change,
)
from sparrow.train.data import Collator, MixtureDataset, StepBatchSampler, make_loader, merge_sampling
from sparrow.train.initial_model import initial_model
from sparrow.train.mixture import Mixture
from sparrow.train.optim import build_loss, build_optimizer, build_scheduler, set_trainable
from sparrow.train.options import RunOptions
from sparrow.train.recipe import Recipe, StageConfig
from sparrow.train.rundir import ERRORS, METRICS, ResumePoint, RunDir, TrainError, read_metrics
from sparrow.train.seeds import derive_seed
from sparrow.train.step import StepSetup, train_step


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


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """This CPU's bf16 matrix-multiply features (``amx_bf16``, ``avx512_bf16``) from its flags; empty when
    it has none or the flags cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return [f for f in ("amx_bf16", "avx512_bf16") if f in flags]


# On a CPU, bf16 autocast pays only when matrix multiplies dominate a step: below this LM width the
# dtype casts cost more than they save (the tiny model, hidden 128, trains slower in bf16; docs/train.md).
CPU_BF16_MIN_HIDDEN = 512


def resolve_precision(
    precision: str, device: torch.device, cpuinfo: str | Path = "/proc/cpuinfo", lm_hidden: int | None = None
) -> dict[str, str]:
    """``{"autocast": "bf16" | "fp32", "reason": ...}`` for a recipe's ``precision`` on ``device``.

    ``auto``: bf16 autocast on a GPU that supports bf16, and on a CPU with AMX-BF16 or AVX512-BF16 (a
    bf16 matrix multiply runs several times faster there than an fp32 one) when the LM is at least
    ``CPU_BF16_MIN_HIDDEN`` wide (``lm_hidden``; None: no size rule); fp32 otherwise."""
    if precision in ("bf16", "fp32"):
        return {"autocast": precision, "reason": "set by the recipe"}
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return {"autocast": "bf16" if ok else "fp32", "reason": f"GPU {'supports' if ok else 'lacks'} bf16"}
    if device.type == "cpu":
        flags = cpu_bf16_flags(cpuinfo)
        has = f"CPU has {' and '.join(flags)}"
        if flags and lm_hidden is not None and lm_hidden < CPU_BF16_MIN_HIDDEN:
            return {"autocast": "fp32", "reason": f"{has}, but the LM is small (hidden {lm_hidden})"}
        if flags:
            return {"autocast": "bf16", "reason": has}
        return {"autocast": "fp32", "reason": "CPU has no AMX-BF16 / AVX512-BF16"}
    return {"autocast": "fp32", "reason": f"no bf16 autocast rule for {device.type}"}


def _feature_cache(recipe: Recipe, out: Path) -> FeatureCache | None:
    fc = recipe.feature_cache
    if not fc.enabled:
        return None
    disk = None if fc.dir is None else resolve_path(fc.dir, out)  # an absolute dir stays as it is
    return FeatureCache(int(fc.memory_mb * 2**20), disk)


def auto_threads(num_workers: int, world_size: int = 1) -> int:
    """CPU threads for the training process so that it and its loader workers fit the machine's cores.

    More threads than free cores makes every parallel op wait for a descheduled thread, which on a
    busy machine costs a scheduler time slice per op (10x slower steps were measured)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, world_size) - num_workers)


@dataclass
class PreparedStage:
    """A recipe stage (``StageConfig``) ready to run: its length, data and what every step uses. (A job's
    ``Stage``, ``sparrow.jobs``, is another thing.)"""

    k: int
    config: StageConfig
    steps: int
    mixture: Mixture
    loader: DataLoader
    setup: StepSetup
    state: TrainState


class Trainer:
    def __init__(self, recipe: Recipe, opts: RunOptions, info: D.DistInfo):
        self.recipe, self.opts, self.info = recipe, opts, info
        self.out = Path(opts.out)
        self.run_dir = RunDir(self.out, info)
        self.saver = ModelSaver(info)
        self.data_root = Path(opts.data_root) if opts.data_root is not None else Path.cwd()
        self.strategy = opts.strategy or recipe.strategy
        self.precision: dict[str, str] = {}  # resolved once the model is built (its size counts on a CPU)
        self.use_bf16 = False
        self.num_workers = recipe.num_workers if opts.num_workers is None else opts.num_workers
        self.model: VideoLLM | None = None
        self.processor: Processor | None = None
        self.feature_cache = _feature_cache(recipe, self.out)

    def _emit(self, event: str, **fields: Any) -> None:
        if self.opts.progress is not None and self.info.is_main:
            self.opts.progress({"event": event, **fields})

    def run(self) -> dict[str, Any]:
        self._check_sources()
        if self.info.enabled and self.strategy == "fsdp" and any(s.lora for s in self.recipe.stages):
            raise TrainError("LoRA stages run in one process or under DDP, not FSDP: use strategy: ddp")
        recipe = {k: v for k, v in self.recipe.to_dict().items() if k != "base_dir"}
        if recipe.get("visual_terms") == "auto":
            del recipe["visual_terms"]  # the default: run.json stays as older runs wrote it (resume)
        self.run_dir.claim({"recipe": recipe, "max_steps": self.opts.max_steps}, self.opts.resume)
        self._build_model()
        if self.info.enabled and self.strategy == "fsdp" and not isinstance(self.model, VideoLLM):
            raise TrainError(
                f"{self.model.family} models train in one process or under DDP: use strategy: ddp"
            )
        point = self.run_dir.resume_point(self.recipe.stages) if self.opts.resume else ResumePoint()
        if point.weights is not None:
            load_weights(self.model, point.weights)
        if self.info.is_main and self.opts.resume:
            self.run_dir.truncate_logs(point.stage, point.step)
        D.barrier(self.info)
        if self.info.enabled and self.strategy == "fsdp":
            D.apply_fsdp(self.model)
        saved = load_checkpoint(point.weights) if point.step > 0 else None
        summary: dict[str, Any] = {"stages": [], "out": str(self.out), "precision": self.precision}
        self._emit("precision", **self.precision)
        if self.opts.resume and point.weights is not None and point.stage < len(self.recipe.stages):
            was = saved.get("threads") if saved is not None else point.threads
            if (note := thread_change(was, self.info.device)) is not None:
                self._emit("note", text=note)
        t0 = time.perf_counter()
        for k in range(point.stage, len(self.recipe.stages)):
            resumed = k == point.stage
            result = self._run_stage(
                k, self.recipe.stages[k], point.step if resumed else 0, saved if resumed else None
            )
            summary["stages"].append(result)
        final = self.out / "final"
        self.saver.save(self.model, final, self._stage_processor(self.recipe.stages[-1]))
        summary["final"] = str(final)
        summary["seconds"] = time.perf_counter() - t0
        self._emit("done", final=str(final))
        return summary

    def _run_stage(
        self, k: int, stage: StageConfig, start_step: int, saved: dict[str, Any] | None
    ) -> dict[str, Any]:
        st = self._start_stage(k, stage, start_step, saved)
        every = stage.checkpoint_every or self.recipe.checkpoint_every
        losses: list[float] = []
        cache_before = self.feature_cache.stats.to_dict() if self.feature_cache is not None else None
        batches = iter(st.loader)
        for step in range(start_step, st.steps):
            row = train_step(st.setup, batches, f"stage {stage.name!r} step {step + 1}")
            errors = row.pop("errors")
            st.state.skipped.update(e["source"] for e in errors)
            self.run_dir.append(ERRORS, [{"stage": k + 1, "step": step + 1, **e} for e in errors])
            row.update({"stage": k + 1, "stage_name": stage.name, "step": step + 1, "steps": st.steps})
            losses.append(row["loss"])
            if (step + 1) % max(1, self.recipe.log_every) == 0 or step + 1 == st.steps:
                self.run_dir.append(METRICS, [row])
            self._emit("step", **row)
            if every and (step + 1) % every == 0 and step + 1 < st.steps:
                self._checkpoint(st, step + 1)
        del batches  # stops the loader's workers before the stage is saved
        result = self._finish_stage(st, losses)
        if self.model.feature_cache is not None and cache_before is not None:
            now = self.model.feature_cache.stats.to_dict()
            result["feature_cache"] = {k: now[k] - cache_before[k] for k in ("hits", "disk_hits", "misses")}
        return result

    # ----------------------------------------------------------------------------- stage set-up

    def _start_stage(
        self, k: int, stage: StageConfig, start_step: int, saved: dict[str, Any] | None
    ) -> PreparedStage:
        seed_stage(self.recipe.seed, k, self.info.rank)
        mixture = Mixture(stage.mixture, self.data_root, self.opts.media_root)
        steps = stage.num_steps(mixture.epoch_size)
        if self.opts.max_steps is not None:
            steps = min(steps, self.opts.max_steps)
        micro, accum = stage.micro_and_accum(self.info.world_size)
        if stage.packing and not getattr(self.model, "supports_packing", True):
            raise TrainError(
                f"stage {stage.name!r}: {self.model.family} models do not take packed batches "
                "(their position ids are per row): set packing: false"
            )
        parts = set_trainable(self.model, stage, seed=self.recipe.seed)
        # A frozen tower's features are reused across steps and epochs; never for a trained tower, and
        # not under FSDP, where skipping the tower on one rank would leave the others in its collectives.
        sharded = self.info.enabled and self.strategy == "fsdp"
        frozen = "vision" not in stage.trainable and not sharded
        self.model.feature_cache = self.feature_cache if frozen else None
        fwd = (
            D.wrap_ddp(self.model, self.info) if self.info.enabled and self.strategy == "ddp" else self.model
        )
        optimizer = build_optimizer(stage, parts)
        loss_fn, ada = build_loss(stage.loss)
        state = TrainState(optimizer, build_scheduler(optimizer, stage, steps), ada, Counter())
        if saved is not None:
            restore(saved, self.model, state, self.recipe.seed, self.info)
        elif start_step == 0:
            bad = [{"stage": k + 1, "step": 0, **b} for s in mixture.sources for b in s.bad_lines]
            self.run_dir.append(ERRORS, bad)
        sampling = merge_sampling(self.processor.cfg.sampling, stage.sampling, f"stage {stage.name!r}")
        dataset = MixtureDataset(
            mixture, self.processor, sampling, max_length=stage.seq_length, media_root=self.opts.media_root
        )
        sampler = StepBatchSampler(
            steps, stage.batch_size, micro, accum, self.info.rank, self.info.world_size, start_step
        )
        collator = Collator(self.processor, pack=stage.packing, max_length=stage.seq_length)
        seed = derive_seed(self.recipe.seed, "loader", k, self.info.rank)
        loader = make_loader(dataset, sampler, collator, num_workers=self.num_workers, seed=seed)
        setup = StepSetup(
            self.model,
            fwd,
            loss_fn,
            optimizer,
            accum,
            stage.grad_clip,
            self.info,
            self.use_bf16,
            state.scheduler,
            state.ada,
        )
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
        return PreparedStage(k, stage, steps, mixture, loader, setup, state)

    def _check_sources(self) -> None:
        """Fail before any training if a stage's required source file is missing (not at stage 3)."""
        for stage in self.recipe.stages:
            for src in stage.mixture.sources:
                path = resolve_path(src.path, self.data_root)
                if not src.optional and not path.is_file():
                    raise TrainError(
                        f"stage {stage.name!r}: mixture source {src.label!r}: file {str(path)!r} not found "
                        "(is --data-root right?)"
                    )

    def _build_model(self) -> None:
        model, processor = initial_model(self.recipe)
        processor.visual_terms = self.recipe.visual_terms_spec()
        processor.clip_cache = ClipCache.of_megabytes(self.recipe.clip_cache_mb)
        hidden = lm_width(model)
        self.precision = resolve_precision(self.recipe.precision, self.info.device, lm_hidden=hidden)
        self.use_bf16 = self.precision["autocast"] == "bf16"
        if self.recipe.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        self.model, self.processor = model.to(self.info.device), processor

    def _stage_processor(self, stage: StageConfig) -> Processor:
        """A processor whose config carries the stage's sampling (saved with the stage checkpoint)."""
        proc = copy.copy(self.processor)
        proc.cfg = replace(
            self.processor.cfg, sampling=merge_sampling(self.processor.cfg.sampling, stage.sampling)
        )
        return proc

    # ------------------------------------------------------------------- checkpoints and results

    def _checkpoint(self, st: PreparedStage, step: int) -> None:
        tmp = self.run_dir.checkpoint_dir(st.k, step, tmp=True)
        final = self.run_dir.checkpoint_dir(st.k, step)
        if self.info.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        self.saver.save(self.model, tmp, self._stage_processor(st.config))
        where = {"stage": st.k, "stage_name": st.config.name, "step": step, "batch": st.config.batch_size}
        save_checkpoint(tmp, self.model, st.state, where, self.info)
        if self.info.is_main:
            publish(tmp, final)
            self.run_dir.prune_checkpoints(st.k, keep=max(1, self.recipe.keep_checkpoints))
        D.barrier(self.info)
        self._emit("checkpoint", stage=st.k + 1, step=step, path=str(final))

    def _finish_stage(self, st: PreparedStage, losses: list[float]) -> dict[str, Any]:
        k, stage = st.k, st.config
        out_dir = self.run_dir.stage_dir(k, stage)
        self.saver.save(self.model, out_dir, self._stage_processor(stage))
        skipped = sum(st.state.skipped.values())
        if self.info.is_main:
            drawn = st.steps * stage.batch_size
            self.run_dir.write_mixture_report(k, stage, st.mixture.report(drawn, dict(st.state.skipped)))
            rows = read_metrics(self.out / METRICS, stage=k + 1)
            title = f"stage {k + 1}: {stage.name} ({', '.join(stage.trainable)}; {stage.loss.name})"
            if rows:
                loss_curve(
                    [r["step"] for r in rows],
                    [r["loss"] for r in rows],
                    self.run_dir.loss_plot(k, stage),
                    title,
                )
            self.run_dir.mark_done(
                k, stage, st.steps, losses[-1] if losses else None, torch.get_num_threads()
            )
        D.barrier(self.info)
        self._emit("stage_done", stage=k + 1, name=stage.name, path=str(out_dir), skipped=skipped)
        return {
            "stage": k + 1,
            "name": stage.name,
            "steps": st.steps,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "skipped": skipped,
            "path": str(out_dir),
        }
