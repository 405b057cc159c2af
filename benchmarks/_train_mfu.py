"""`bench_train.py --device cuda`: model FLOPs utilisation of training steps on a GPU (see
bench_train.py's docstring)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from sparrow.train.recipe import Recipe  # noqa: E402

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


def synthetic_feats(
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
                synthetic_feats(proc, n_tok, args.frames, args.text_tokens, size, gen) for _ in range(micro)
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
