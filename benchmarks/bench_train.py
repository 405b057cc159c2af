"""Training speed: does the data loader keep up with training, what does the feature cache buy, and
what MFU does a GPU reach?

CPU mode (default): runs one stage of the tiny recipe (``configs/tiny/apollo-3stage.yaml``, default
the fine-tuning mix of world video QA, synthetic samples when present, and text; the vision tower is
frozen there) through the real trainer for two mixture epochs, twice: without the frozen-encoder
feature cache and with it. It reports samples/s and tokens/s per epoch (epoch 1 fills the cache, epoch
2 is served from it); then iterates the *same* data loader alone (same mixture, processor, packing and
worker count) and reports its samples/s against training's. The loader must deliver at least 2x what
training consumes, so training never waits for data. The single-process loader (``workers=0``, the
baseline of a plain loop over samples) is measured too, and the loader's second epoch with the
trainer's decoded-clip cache (``clip_cache_mb``) against decoding every clip, as a plain loader does.
Training runs with the recipe's clip cache in every row.

    .venv/bin/python benchmarks/bench_train.py [--data-root WORLD] [--steps 6] [--workers 1]
    .venv/bin/python benchmarks/bench_train.py --model configs/embedded/model.yaml --batch 8 --lora-lm 16

``--model`` swaps in another model config (the stage then decodes frames at that model's own size);
``--lora-lm R`` trains the LM through LoRA adapters of rank R instead of fully; ``--steps`` is per
epoch. Without ``--data-root`` a tiny world is generated into a temporary directory first (about a
minute).

GPU mode (``--device cuda``): model FLOPs utilisation of training steps of a SigLIP-base-size encoder
(86M) + Qwen2-0.5B-size LM (random init from configs, no download), bf16 autocast, packed rows, through
the trainer's own step (loss, gradient scaling, clipping, AdamW). FLOPs per step are counted by
``torch.utils.flop_counter`` on one step (matmuls and attention, forward and backward); MFU = those
FLOPs / step time / the GPU's dense bf16 peak.

    .venv/bin/python benchmarks/bench_train.py --device cuda [--rows 4 --row-length 4096]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
from _train_mfu import run_mfu  # noqa: E402
from _train_precision import run_precision  # noqa: E402

from sparrow.train.recipe import Recipe  # noqa: E402

TINY = ROOT / "configs" / "tiny" / "apollo-3stage.yaml"


# ---------------------------------------------------------------------------------------------- CPU


def _world(data_root: str | None, tmp: Path) -> Path:
    if data_root:
        return Path(data_root)
    from sparrow.world import generate_world

    out = tmp / "world"
    print(f"generating a tiny world in {out} ...", flush=True)
    generate_world(out, seed=0, preset="tiny", workers=2)
    return out


def _one_stage_recipe(args: argparse.Namespace, data: Path) -> Recipe:
    """The chosen stage alone, ``--steps`` per mixture epoch, two epochs whose records are the same (as
    in any multi-epoch run over a fixed pool)."""
    recipe = Recipe.from_yaml(TINY)
    stage = next((s for s in recipe.stages if s.name == args.stage), None)
    if stage is None:
        raise SystemExit(f"no stage {args.stage!r} in {TINY}; choose from {[s.name for s in recipe.stages]}")
    if args.batch:
        stage.batch_size, stage.micro_batch_size, stage.grad_accum = args.batch, args.batch, None
    if args.model:
        recipe.model = str(Path(args.model).resolve())
        stage.sampling.pop("image_size", None)  # the tiny recipe's 32 px suits the tiny tower only
    if args.lora_lm and "lm" in stage.trainable:
        from sparrow.model.lora import AdapterConfig

        stage.lora["lm"] = AdapterConfig(r=args.lora_lm, alpha=2.0 * args.lora_lm)
    stage.steps, stage.epochs, stage.checkpoint_every = 2 * args.steps, None, None
    _fixed_pool(stage.mixture, args.steps * stage.batch_size, data)
    recipe.stages, recipe.checkpoint_every, recipe.num_workers = [stage], None, args.workers
    return recipe


def _fixed_pool(mixture, epoch: int, data: Path) -> None:
    """Cap each source to its weighted share of one epoch and drop the weights: an epoch is then the
    whole (capped) pool once, so epoch 2 draws epoch 1's records again (in another order)."""
    sources = [s for s in mixture.sources if not (s.optional and not (data / s.path).is_file())]
    total = sum(s.weight or 1.0 for s in sources)
    exact = [epoch * (s.weight or 1.0) / total for s in sources]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(sources)), key=lambda i: counts[i] - exact[i])[: epoch - sum(counts)]:
        counts[i] += 1  # largest remainders first
    for s, n in zip(sources, counts, strict=True):
        s.weight, s.cap = None, f"first:{max(1, n)}"
    mixture.sources, mixture.epoch_size = sources, None


def bench_training(recipe: Recipe, data: Path, tmp: Path, cache: bool) -> dict[str, dict[str, float]]:
    """Train the stage with or without the feature cache; figures per mixture epoch."""
    from sparrow.train.options import RunOptions
    from sparrow.train.recipe import FeatureCacheConfig
    from sparrow.train.rundir import read_metrics
    from sparrow.train.trainer import train

    recipe = copy.deepcopy(recipe)
    recipe.feature_cache = FeatureCacheConfig(enabled=cache)
    out = tmp / f"run-{time.monotonic_ns()}"
    summary = train(
        recipe, RunOptions(out=out, data_root=data, device="cpu", threads=torch.get_num_threads())
    )
    rows = read_metrics(out / "metrics.jsonl")
    half = len(rows) // 2
    # Epoch 1 without its first step: that one pays for worker start-up.
    result = {"epoch1": _rates(rows[1:half]), "epoch2": _rates(rows[half:])}
    result["cache"] = summary["stages"][0].get("feature_cache")
    return result


def _rates(rows: list[dict]) -> dict[str, float]:
    seconds = sum(r["step_time_s"] for r in rows)
    return {
        "steps": len(rows),
        "samples_per_s": sum(r["samples"] for r in rows) / seconds,
        "tokens_per_s": sum(r["tokens"] for r in rows) / seconds,
        "data_wait_share": sum(r["data_wait_s"] for r in rows) / seconds,
        "median_step_s": statistics.median(r["step_time_s"] for r in rows),
    }


def bench_loader(
    recipe: Recipe, data: Path, workers: int, batches: int, clip_cache_mb: float = 0.0
) -> dict[str, float]:
    """The trainer's data path alone: mixture -> processor -> collate, same settings. With a clip cache
    (the trainer's ``clip_cache_mb``) it runs two epochs of ``batches`` and times the second, whose clips
    the first one decoded."""
    from sparrow.model import Processor, VideoLLMConfig
    from sparrow.model.media import ClipCache
    from sparrow.train.data import Collator, MixtureDataset, StepBatchSampler, make_loader, merge_sampling
    from sparrow.train.mixture import Mixture

    stage = recipe.stages[0]
    cfg = VideoLLMConfig.from_yaml(recipe.resolve(recipe.model))
    proc = Processor(cfg, clip_cache=ClipCache.of_megabytes(clip_cache_mb))
    mixture = Mixture(stage.mixture, data)
    micro, accum = stage.micro_and_accum(1)
    skip = batches if clip_cache_mb else 1  # epoch 1 fills the cache; else only worker start-up
    steps = -(-(batches + skip) // accum)
    dataset = MixtureDataset(mixture, proc, merge_sampling(cfg.sampling, stage.sampling), stage.seq_length)
    sampler = StepBatchSampler(steps, stage.batch_size, micro, accum)
    loader = make_loader(
        dataset, sampler, Collator(proc, stage.packing, stage.seq_length), num_workers=workers
    )
    it = iter(loader)
    for _ in range(skip):  # worker start-up (and the cache's first epoch) is not throughput
        next(it)
    t0 = time.perf_counter()
    samples = 0
    for _ in range(batches):
        samples += next(it)["samples"]
    dt = time.perf_counter() - t0
    return {"batches": batches, "samples_per_s": samples / dt}


def run_cpu(args: argparse.Namespace) -> None:
    from sparrow.train.trainer import auto_threads

    torch.set_num_threads(args.threads or auto_threads(args.workers))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        data = _world(args.data_root, tmp)
        recipe = _one_stage_recipe(args, data)
        stage = recipe.stages[0]
        lora = f", LoRA r={stage.lora['lm'].r} on the LM" if "lm" in stage.lora else ""
        print(
            f"model {recipe.model if args.model else 'tiny'}; stage {stage.name!r} "
            f"[{'+'.join(stage.trainable)}{lora}]: batch {stage.batch_size}, "
            f"micro {stage.micro_and_accum(1)[0]}, seq {stage.seq_length}, packing {stage.packing}, "
            f"{args.steps} steps an epoch x 2, loader workers {args.workers}, "
            f"torch threads {torch.get_num_threads()}",
            flush=True,
        )
        plain = bench_training(recipe, data, tmp, cache=False)
        cached = bench_training(recipe, data, tmp, cache=True)
        batches = args.steps * stage.micro_and_accum(1)[1]
        loader = bench_loader(recipe, data, args.workers, batches)
        single = bench_loader(recipe, data, 0, batches) if args.workers else loader
        clips = bench_loader(recipe, data, args.workers, batches, recipe.clip_cache_mb)
    trainings = [
        ("training, no feature cache, epoch 1", plain["epoch1"]),
        ("training, no feature cache, epoch 2", plain["epoch2"]),
        ("training, feature cache, epoch 1 (fills)", cached["epoch1"]),
        ("training, feature cache, epoch 2 (hits)", cached["epoch2"]),
    ]
    print(f"\n{'':44s} {'samples/s':>10s} {'tokens/s':>10s} {'step s':>8s} {'loader/train':>13s}")
    for name, r in trainings:
        ratio = loader["samples_per_s"] / r["samples_per_s"]
        print(
            f"{name:44s} {r['samples_per_s']:>10.2f} {r['tokens_per_s']:>10,.0f} "
            f"{r['median_step_s']:>8.3f} {ratio:>12.2f}x"
        )
    print(f"{f'data loader alone ({args.workers} workers)':44s} {loader['samples_per_s']:>10.2f}")
    print(f"{'data loader alone (0 workers, baseline)':44s} {single['samples_per_s']:>10.2f}")
    print(f"{'data loader, clip cache, epoch 2':44s} {clips['samples_per_s']:>10.2f}")
    gain = clips["samples_per_s"] / loader["samples_per_s"]
    print(
        f"clip cache ({recipe.clip_cache_mb:g} MiB a worker): loader epoch 2 {gain:.2f}x decoding every clip"
    )
    speedup = cached["epoch2"]["samples_per_s"] / plain["epoch2"]["samples_per_s"]
    print(f"\nfeature cache: {cached['cache']}; epoch-2 speed-up with the cache: {speedup:.2f}x")
    worst = loader["samples_per_s"] / max(r["samples_per_s"] for _, r in trainings)
    verdict = "OK" if worst >= 2 else "TOO SLOW (needs >= 2x)"
    print(f"ratio loader / fastest training samples/s: {worst:.2f}x  {verdict}")
    if args.json:
        out = {
            "no_cache": plain,
            "feature_cache": cached,
            "loader": loader,
            "loader_single": single,
            "ratio": worst,
            "cache_speedup_epoch2": speedup,
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu (loader vs training) or cuda (MFU)")
    ap.add_argument("--mfu", action="store_true", help="MFU mode (implied by --device cuda)")
    ap.add_argument(
        "--model",
        help="CPU mode: a model config YAML instead of the tiny one (e.g. configs/embedded/model.yaml); "
        "MFU mode: base (SigLIP-base + 0.5B, default) or tiny",
    )
    ap.add_argument("--batch", type=int, default=0, help="CPU mode: global batch (= micro-batch)")
    ap.add_argument("--lora-lm", type=int, default=0, help="CPU mode: train the LM through LoRA of rank R")
    ap.add_argument("--data-root", help="a `sparrow world` output (CPU mode); default: generate one")
    ap.add_argument("--stage", default="finetune", help="stage of the tiny recipe to run (CPU mode)")
    ap.add_argument("--steps", type=int, default=6, help="training steps to time (CPU mode: per epoch)")
    ap.add_argument("--workers", type=int, default=1, help="data-loader workers (CPU mode)")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads (CPU mode; 0 = cores minus workers)"
    )
    ap.add_argument("--rows", type=int, default=2, help="packed rows per micro-batch (GPU mode)")
    ap.add_argument(
        "--row-length", type=int, help="tokens per packed row (GPU mode: 8192; precision mode: 1024)"
    )
    ap.add_argument("--frames", type=int, help="frames per sample (GPU mode: 16; precision mode: 8)")
    ap.add_argument("--text-tokens", type=int, help="text tokens per sample (GPU mode: 256; precision: 96)")
    ap.add_argument("--trainable", default="vision,connector,lm", help="parts trained (GPU mode)")
    ap.add_argument("--attn", default="sdpa", help="LM attention implementation (GPU mode)")
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (GPU mode)")
    ap.add_argument("--peak-tflops", type=float, help="override the GPU's dense bf16 peak")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument(
        "--precision",
        action="store_true",
        help="CPU: tokens/s of fp32 vs bf16 autocast, full vs supervised-only logits, packing off / on",
    )
    ap.add_argument("--precision-models", default="tiny,embedded", help="precision mode: models to run")
    ap.add_argument(
        "--answer-tokens", type=int, default=12, help="precision mode: supervised tokens a sample"
    )
    args = ap.parse_args()
    precision = args.precision
    for arg, gpu, cpu in (("row_length", 8192, 1024), ("frames", 16, 8), ("text_tokens", 256, 96)):
        if getattr(args, arg) is None:
            setattr(args, arg, cpu if precision else gpu)
    if precision:
        args.batch = args.batch or 16
        run_precision(args)
    elif args.device.startswith("cuda") or args.mfu:
        run_mfu(args)
    else:
        run_cpu(args)


if __name__ == "__main__":
    main()
