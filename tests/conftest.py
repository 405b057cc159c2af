"""What several test modules share: the tiny random video-LLM of configs/tiny/model.yaml, a torch
thread limit and a fake OpenAI-compatible server. Media and training-data generators stay in media.py
and train_data.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi import FastAPI

    from sparrow.model import Processor, VideoLLM, VideoLLMConfig, VisionConfig

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny" / "model.yaml"


def pytest_configure(config: pytest.Config) -> None:
    """One CPU thread by default for torch here and in every child process a test starts (before any
    test module imports torch). Float sums split over threads depend on the thread count, so a run
    killed under the default count and resumed under ``threads=1`` drifted in the 7th digit; one thread
    is also the fastest on a busy 2-core machine. Tests that compare numbers bit for bit still pin
    their own threads (``deterministic`` below, ``threads=1``)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


@pytest.fixture(scope="module")
def deterministic():
    """For modules that compare numbers bit for bit: one thread and deterministic algorithms, restored
    afterwards. Opt in with ``pytestmark = pytest.mark.usefixtures("deterministic")``."""
    import torch

    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(strict)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and on a shared busy machine extra threads only contend.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(vision: VisionConfig | None = None, **connector: Any) -> VideoLLMConfig:
    """The tiny model's config with ``connector`` fields changed; with ``vision``, that tower instead
    of the tiny SigLIP, at 64 px."""
    from sparrow.model import VideoLLMConfig

    cfg = VideoLLMConfig.from_yaml(TINY)
    if vision is not None:
        cfg.vision = vision
        cfg.sampling.image_size = 64
    for k, v in connector.items():
        setattr(cfg.connector, k, v)
    return cfg


def tiny_model(cfg: VideoLLMConfig | None = None, seed: int = 0) -> tuple[VideoLLM, Processor]:
    """A random video-LLM (weights drawn right after ``torch.manual_seed(seed)``) and its processor."""
    import torch

    from sparrow.model import Processor, VideoLLM

    cfg = cfg if cfg is not None else tiny_config()
    proc = Processor(cfg)
    torch.manual_seed(seed)
    return VideoLLM(cfg, tokenizer=proc.tokenizer), proc


def served_checkpoint(d: Path) -> Path:
    """A tiny model's checkpoint (at most 4 frames) in ``d/ckpt`` and a 2 s video ``d/videos/a.mp4``: what
    the serve tests point ``sparrow serve`` at. Returns ``d/ckpt``."""
    import torch
    from media import write_video

    torch.set_num_threads(1)
    cfg = tiny_config()
    cfg.sampling.max_frames = 4
    model, proc = tiny_model(cfg)
    model.save_pretrained(d / "ckpt", processor=proc)
    (d / "videos").mkdir()
    write_video(d / "videos" / "a.mp4", num_frames=20, fps=10, width=32, height=32)
    return d / "ckpt"


def openai_app(model: str, chat: Callable[..., Any]) -> FastAPI:
    """A fake OpenAI-compatible server: ``GET /v1/models`` lists ``model`` and ``POST
    /v1/chat/completions`` answers with ``chat(body: dict)`` (serve it with ``ServerThread``)."""
    from fastapi import FastAPI

    app = FastAPI()
    app.get("/v1/models")(lambda: {"data": [{"id": model}]})
    app.post("/v1/chat/completions")(chat)
    return app


def completion(text: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A chat-completions reply body carrying ``text`` and its token usage."""
    return {
        "choices": [{"message": {"content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }
