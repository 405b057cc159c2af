"""Two CPU processes (gloo) with DDP and with FSDP2 train exactly like one process with the same
global batch: same per-step losses, same final weights (up to float summation order). A killed
2-process FSDP2 run resumes bit-exactly."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from train_data import make_data, model_config, stage, write_jsonl

from sparrow.train.options import RunOptions
from sparrow.train.recipe import Recipe
from sparrow.train.rundir import read_metrics
from sparrow.train.trainer import train

# Bit-for-bit comparisons (resume, frozen weights): one thread, deterministic algorithms.
pytestmark = pytest.mark.usefixtures("deterministic")

STEPS = 3


def _recipe(strategy: str, dropout: float = 0.0) -> Recipe:
    st = stage(
        "tune",
        ["connector", "lm"],  # the vision tower stays frozen: FSDP / DDP must cope with frozen parts
        STEPS,
        # epoch_size 12 = the whole run: exactly one draw of the record whose frame file is missing.
        {
            "sources": [
                {"path": "text.jsonl", "weight": 5},
                {"path": "frames.jsonl", "weight": 6},
                {"path": "bad.jsonl", "weight": 1},
            ],
            "epoch_size": 12,
        },
        packing=True,
        checkpoint_every=2,
    )
    # One process: micro-batch 2 x 2 accumulation steps; two processes: 2 x 1 each. Global batch 4.
    return Recipe.from_dict(
        {"model": model_config(dropout), "seed": 3, "stages": [st], "num_workers": 0, "strategy": strategy}
    )


class _Kill(Exception):
    pass


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for strategy in ("ddp", "fsdp"):
            train(_recipe(strategy), RunOptions(out=Path(out) / strategy, data_root=Path(data), device="cpu"))
        # Exact resume under FSDP, with dropout: sharded optimizer state and per-rank RNG come back.
        opts = {"data_root": Path(data), "device": "cpu"}
        train(_recipe("fsdp", 0.1), RunOptions(out=Path(out) / "fsdp-full", **opts))
        from sparrow.train.trainer import Trainer

        emit = Trainer._emit

        def kill_at_step3(self, event, **fields):  # every rank stops at the same point, like a kill
            if event == "step" and fields["step"] == 3:
                raise _Kill
            emit(self, event, **fields)

        Trainer._emit = kill_at_step3
        try:
            train(_recipe("fsdp", 0.1), RunOptions(out=Path(out) / "fsdp-killed", **opts))
        except _Kill:
            pass
        finally:
            Trainer._emit = emit
        killed = Path(out) / "fsdp-killed"
        assert (killed / "checkpoints" / "stage1-step0000002").is_dir() and not (killed / "final").exists()
        train(_recipe("fsdp", 0.1), RunOptions(out=Path(out) / "fsdp-killed", resume=True, **opts))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    from sparrow.model import load_pretrained

    model, _ = load_pretrained(ckpt)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.timeout(300)
def test_two_processes_match_one(tmp_path):
    data = make_data(tmp_path / "data")
    missing = {
        "id": "bad-missing",
        "media": [{"type": "frames", "paths": ["frames/none/0.png"], "timestamps": None}],
    }
    missing["messages"] = [{"role": "user", "content": "<video>\nq"}, {"role": "assistant", "content": "a"}]
    write_jsonl(data / "bad.jsonl", [missing])
    ref_out = tmp_path / "one"
    train(_recipe("ddp"), RunOptions(out=ref_out, data_root=data, device="cpu", threads=1))
    # fork: the workers inherit the imported, warmed-up modules of this process (spawn re-imports
    # transformers and rebuilds the tokenizer in each child: ~15 s on a busy 2-core machine).
    mp.start_processes(
        _worker, args=(2, _free_port(), str(data), str(tmp_path)), nprocs=2, start_method="fork"
    )

    ref = read_metrics(ref_out / "metrics.jsonl")
    ref_w = _weights(ref_out / "final")
    assert len(ref) == STEPS
    for strategy in ("ddp", "fsdp"):
        out = tmp_path / strategy
        rows = read_metrics(out / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
        for a, b in zip(ref, rows, strict=True):
            assert b["samples"] == a["samples"] and b["supervised_tokens"] == a["supervised_tokens"]
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-5), strategy
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4), strategy
        w = _weights(out / "final")
        for k, v in ref_w.items():
            torch.testing.assert_close(
                w[k], v, atol=2e-5, rtol=1e-4, msg=lambda m, k=k, s=strategy: f"{s} {k}: {m}"
            )
        # The rejected sample of one rank reaches the shared errors.jsonl.
        assert (
            "frames-missing" in (out / "errors.jsonl").read_text()
            or "frames-missing" not in (ref_out / "errors.jsonl").read_text()
        )
    # The killed FSDP run (dropout on), resumed, retraces the uninterrupted one bit for bit.
    full, resumed = tmp_path / "fsdp-full", tmp_path / "fsdp-killed"
    curve = [(r["step"], r["loss"], r["grad_norm"]) for r in read_metrics(full / "metrics.jsonl")]
    assert len(curve) == STEPS
    assert [(r["step"], r["loss"], r["grad_norm"]) for r in read_metrics(resumed / "metrics.jsonl")] == curve
    wf, wr = _weights(full / "final"), _weights(resumed / "final")
    assert set(wf) == set(wr) and all(torch.equal(wf[k], wr[k]) for k in wf)
