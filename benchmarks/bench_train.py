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


# ------------------------------------------------------------------------------- CPU precision

PRECISION_MODELS = {
    "tiny": ROOT / "configs" / "tiny" / "model.yaml",
    "embedded": ROOT / "configs" / "embedded" / "model.yaml",
}


class _FullLogits(torch.nn.Module):
    """The step as it was: logits at every position, the supervised ones picked afterwards."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, logits_at: torch.Tensor, **inputs):
        out = self.model(**inputs)
        out["logits"] = out.logits[logits_at]
        return out


def _precision_model(name: str):
    """(model, processor) with the vision tower and the LM frozen, the connector trained (input gradients
    flow through the LM, as in a connector stage); None when a packaged part's wheel is missing."""
    from sparrow.model import Processor, VideoLLM, VideoLLMConfig
    from sparrow.model.feature_cache import FeatureCache
    from sparrow.model.packaged import prepare_packaged
    from sparrow.model.packaged_specs import PackagedPartError

    cfg = VideoLLMConfig.from_yaml(PRECISION_MODELS[name])
    try:
        prepare_packaged(cfg)
        proc = Processor(cfg)
        torch.manual_seed(0)
        model = VideoLLM(cfg, tokenizer=proc.tokenizer)
    except (PackagedPartError, ImportError, OSError) as e:
        print(f"{name}: skipped ({str(e).splitlines()[0]})")
        return None
    model.vision.requires_grad_(False)
    model.lm.requires_grad_(False)
    model.train()
    model.feature_cache = FeatureCache()  # the frozen tower runs once per frame, as in training
    return model, proc


# (label, packing, bf16 autocast, supervised-only logits, packed_attention); None: what auto picks
PRECISION_CONFIGS = [
    ("fp32, full logits", False, False, False, "auto"),
    ("fp32, supervised logits", False, False, True, "auto"),
    ("bf16, full logits", False, True, False, "auto"),
    ("bf16, supervised logits", False, True, True, "auto"),
    ("packed, block mask", True, None, True, "mask"),
    ("packed, per sample", True, None, True, "per_sample"),
]


def bench_precision(args: argparse.Namespace, name: str) -> list[dict]:
    """tokens/s of the trainer's step on one model: fp32 / bf16 autocast x full / supervised-only logits
    (unpacked), then packed rows through the block mask or per sample (at the precision auto picks).
    Samples: ``--frames`` frames + ~``--text-tokens`` text tokens, ``--answer-tokens`` supervised.
    The configurations run in turn, one step each per round, so load changes on a shared machine hit
    them alike; each figure is the median over ``--steps`` rounds."""
    from sparrow.model import collate
    from sparrow.model.geometry import frame_size, tokens_per_group
    from sparrow.train import distributed as D
    from sparrow.train.step import StepSetup, train_step
    from sparrow.train.trainer import resolve_precision

    built = _precision_model(name)
    if built is None:
        return []
    model, proc = built
    auto = resolve_precision("auto", torch.device("cpu"), lm_hidden=int(model.lm.config.hidden_size))
    print(f"{name}: precision auto -> {auto['autocast']} ({auto['reason']})", flush=True)
    n_tok, size = tokens_per_group(model.cfg), frame_size(model.cfg)
    gen = torch.Generator().manual_seed(0)
    feats = []
    for _ in range(2 * args.batch):
        half = args.text_tokens // 2
        text = args.text_tokens + int(torch.randint(-half, half + 1, (1,), generator=gen))
        f = _synthetic_feats(proc, n_tok, args.frames, text, size, gen)
        f["labels"][: -args.answer_tokens] = -100
        feats.append(f)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": params, "part": "connector"}], lr=1e-6)
    runs = []
    for label, pack, bf16, supervised_only, mode in PRECISION_CONFIGS:
        bf16 = auto["autocast"] == "bf16" if bf16 is None else bf16
        chunks = [feats[: args.batch], feats[args.batch :]]
        batches = [collate(c, proc.pad_token_id, pack=pack, max_length=args.row_length) for c in chunks]
        fwd = model if supervised_only else _FullLogits(model)
        setup = StepSetup(model, fwd, _sum_ce, opt, 1, 1.0, D.DistInfo(), use_bf16=bf16)
        runs.append(
            {"label": label, "setup": setup, "batches": batches, "mode": mode, "times": [], "tokens": []}
        )

    def step(run: dict, k: int) -> dict:
        model.packed_attention = run["mode"]
        batch = run["batches"][k % 2]
        return train_step(
            run["setup"], iter([{"batch": dict(batch), "samples": args.batch, "errors": []}]), "b"
        )

    for run in runs:
        for k in range(2):
            step(run, k)  # warm-up: fills the feature cache for this precision, both batches
        print(f"  warmed up: {run['label']}", flush=True)
    for k in range(args.steps):
        for run in runs:
            row = step(run, k)
            run["times"].append(row["step_time_s"])
            run["tokens"].append(row["tokens"])
            rate = row["tokens"] / row["step_time_s"]
            print(f"  round {k + 1}: {run['label']:26s} {rate:>9,.0f} tok/s", flush=True)
    results = []
    for run in runs:
        t = statistics.median(run["times"])
        results.append(
            {
                "model": name,
                "config": run["label"],
                "tokens_per_s": statistics.median(run["tokens"]) / t,
                "samples_per_s": args.batch / t,
                "step_s": t,
            }
        )
        r = results[-1]
        print(
            f"{name:9s} {r['config']:26s} {r['tokens_per_s']:>9,.0f} tok/s {r['samples_per_s']:>7.2f} samples/s",
            flush=True,
        )
    return results


def _sum_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.float(), target, reduction="sum")


def run_precision(args: argparse.Namespace) -> None:
    from sparrow.train.trainer import auto_threads, cpu_bf16_flags

    torch.set_num_threads(args.threads or auto_threads(0))
    flags = cpu_bf16_flags() or ["none"]
    print(
        f"CPU bf16 features: {', '.join(flags)}; torch threads {torch.get_num_threads()}; "
        f"batch {args.batch} x ({args.frames} frames + ~{args.text_tokens} text tokens, "
        f"{args.answer_tokens} supervised)",
        flush=True,
    )
    results = []
    for name in args.precision_models.split(","):
        results += bench_precision(args, name)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------- GPU

PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "H200": 989.4,
    "GH200": 989.4,
    "A100": 312.0,
    "L40S": 362.0,
}

GPU_MODEL = {
    # SigLIP-base-patch16-224 sizes (86M parameters).
    "vision": {
        "config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 16,
        }
    },
    "connector": {
        "type": "perceiver",
        "tokens_per": "frame",
        "resampler_n_latents": 32,
        "resampler_depth": 3,
        "resampler_n_heads": 16,
        "resampler_head_dim": 64,
        "num_key_value_heads": 4,
    },
    # Qwen2-0.5B sizes (494M parameters, tied embeddings).
    "lm": {
        "config": {
            "model_type": "qwen2",
            "vocab_size": 151936,
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": True,
        }
    },
    "tokenizer": "tiny",
}


def _peak(name: str, override: float | None) -> float:
    if override:
        return override * 1e12
    if name == "CPU":
        raise SystemExit("MFU on the CPU needs --peak-tflops")
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_BF16_TFLOPS[key] * 1e12
    raise SystemExit(f"unknown GPU {name!r}: pass --peak-tflops")


def _synthetic_feats(
    proc, n_tokens_per_frame: int, frames: int, text: int, size: int, gen: torch.Generator
) -> dict:
    """One processed sample: text, `frames` frames of visual tokens, an answer (labels on the last part)."""
    vis = proc.visual_token_id
    prompt = torch.randint(0, 1000, (text // 2,), generator=gen)
    answer = torch.randint(0, 1000, (text - text // 2,), generator=gen)
    prompt[prompt == vis] = vis + 1  # random text must not hit the visual placeholder id
    answer[answer == vis] = vis + 1
    ids = torch.cat([prompt[:8], torch.full((frames * n_tokens_per_frame,), vis), prompt[8:], answer])
    labels = torch.full_like(ids, -100)
    labels[-len(answer) :] = answer
    return {
        "input_ids": ids,
        "labels": labels,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": torch.randn(frames, 3, size, size, generator=gen),
        "group_sizes": torch.ones(frames, dtype=torch.long),
        "num_frames": frames,
        "id": "synthetic",
    }


def _mfu_model_config(args: argparse.Namespace) -> dict:
    import yaml

    if args.model not in (None, "base", "tiny"):
        raise SystemExit("MFU mode: --model is base or tiny")
    if args.model == "tiny":  # a quick check of this code path without a GPU
        cfg_dict = yaml.safe_load((ROOT / "configs" / "tiny" / "model.yaml").read_text())
    else:
        cfg_dict = json.loads(json.dumps(GPU_MODEL))
    cfg_dict["lm"]["attn_implementation"] = args.attn
    return cfg_dict


def _mfu_stage(args: argparse.Namespace, cfg_dict: dict, micro: int):
    """A one-stage recipe of packed micro-batches, trained in bf16 (its data is synthetic)."""
    from sparrow.train.recipe import Recipe

    parts = args.trainable.split(",")
    stage = {
        "name": "bench",
        "trainable": parts,
        "lr": {p: 1e-5 for p in parts},
        "mixture": ["unused.jsonl"],
        "steps": args.steps,
        "batch_size": micro,
        "micro_batch_size": micro,
        "seq_length": args.row_length,
        "packing": True,
    }
    return Recipe.from_dict({"model": cfg_dict, "stages": [stage], "precision": "bf16"}).stages[0]


def run_mfu(args: argparse.Namespace) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from sparrow.model import Processor, VideoLLM, VideoLLMConfig, collate
    from sparrow.model.geometry import frame_size, tokens_per_group
    from sparrow.train import distributed as D
    from sparrow.train.optim import build_loss, build_optimizer, set_trainable
    from sparrow.train.step import StepSetup, train_step

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    peak = _peak(name, args.peak_tflops)
    cfg_dict = _mfu_model_config(args)
    cfg = VideoLLMConfig.from_dict(cfg_dict)
    proc = Processor(cfg)
    n_tok, size = tokens_per_group(cfg), frame_size(cfg)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    torch.manual_seed(0)
    model = VideoLLM(cfg, tokenizer=proc.tokenizer).to(device)
    if args.grad_ckpt:
        model.enable_gradient_checkpointing()
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in model.parts().items()}
    per_sample = args.frames * n_tok + args.text_tokens
    per_row = max(1, args.row_length // per_sample)
    micro = per_row * args.rows
    st = _mfu_stage(args, cfg_dict, micro)
    optimizer = build_optimizer(st, set_trainable(model, st))
    loss_fn, _ = build_loss(st.loss)
    # The trainer's own step on one process: bf16 autocast, no accumulation.
    setup = StepSetup(
        model, model, loss_fn, optimizer, 1, st.grad_clip, D.DistInfo(device=device), use_bf16=True
    )
    gen = torch.Generator().manual_seed(0)

    def batches():
        while True:
            feats = [
                _synthetic_feats(proc, n_tok, args.frames, args.text_tokens, size, gen) for _ in range(micro)
            ]
            batch = collate(feats, proc.pad_token_id, pack=True, max_length=args.row_length)
            yield {"batch": batch, "samples": micro, "errors": []}

    it = batches()
    pre = [next(it) for _ in range(args.steps + 3)]  # batch building is not what MFU measures
    feed = iter(pre)
    for _ in range(2):  # warm-up (kernels, allocator)
        train_step(setup, feed, "bench")
    sync()
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(setup, feed, "bench")
    flops = counter.get_total_flops()
    sync()
    times, tokens = [], []
    for _ in range(args.steps):
        sync()
        t0 = time.perf_counter()
        row = train_step(setup, feed, "bench")
        sync()
        times.append(time.perf_counter() - t0)
        tokens.append(row["tokens"])
    step = statistics.median(times)
    shape = tuple(pre[0]["batch"]["input_ids"].shape)
    info = {"name": name, "peak": peak, "params": params, "micro": micro, "n_tok": n_tok, "rows": shape}
    _report_mfu(args, info, flops, step, statistics.median(tokens), device)


def _report_mfu(
    args: argparse.Namespace, info: dict, flops: float, step: float, tokens: float, device: torch.device
) -> None:
    name, peak, micro, rows = info["name"], info["peak"], info["micro"], info["rows"]
    mfu = flops / step / peak
    print(f"{name}: peak bf16 {peak / 1e12:.0f} TFLOP/s (dense)")
    params = ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in info["params"].items())
    print(f"parameters: {params}; trainable {args.trainable}")
    print(
        f"micro-batch: {micro} samples x ({args.frames} frames x {info['n_tok']} tokens + {args.text_tokens} "
        f"text) packed into {rows[0]} rows of {rows[1]} tokens; attention {args.attn}; "
        f"grad ckpt {args.grad_ckpt}"
    )
    print(f"FLOPs per step (counted): {flops / 1e12:.2f} TFLOP; median step {step * 1000:.1f} ms")
    print(f"throughput: {tokens / step:,.0f} tokens/s, {micro / step:.1f} samples/s")
    print(f"MFU: {mfu:.1%}  (target >= 40%)")
    if device.type == "cuda":
        print(f"peak memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"gpu": name, "mfu": mfu, "flops_per_step": flops, "step_s": step, "micro": micro})
            + "\n"
        )


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
