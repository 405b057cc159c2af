"""Settings of a refinement run and the backend they build."""

from __future__ import annotations

from dataclasses import dataclass

from sparrow.chat.base import Backend, BackendError, Decoding
from sparrow.chat.cache import CachedBackend, ResponseCache
from sparrow.refine.blocks import MAX_WORDS
from sparrow.refine.parse import DURATION

BACKENDS = ("hf", "openai", "sparrow")


@dataclass(frozen=True)
class RefineConfig:
    """The settings of a run. Each field's comment is also its ``sparrow refine`` option's help."""

    backend: str = "hf"  # hf (local LM), openai (any compatible server) or sparrow (a checkpoint that sees).
    # hf: model folder (default: the packaged SmolLM2); openai: model name; sparrow: checkpoint.
    model: str | None = None
    base_url: str = "http://127.0.0.1:8000/v1"  # openai: the server's /v1 URL.
    api_key_env: str | None = None  # openai: environment variable holding the key.
    concurrency: int = 4  # openai: requests in flight.
    timeout: float = 120.0  # openai: seconds per attempt.
    retries: int = 5  # openai: retries per request (429, 5xx, timeouts).
    batch_size: int = 8  # hf: prompts generated together.
    device: str = "cpu"  # hf / sparrow: cpu, cuda, ...
    template: str = "refine"  # Packaged template name or file (with [system] and [user] sections).
    examples: str | None = None  # JSONL of human-refined examples (few-shot).
    # show each block only the N examples whose transcript reads most like it (0: all, in file order)
    nearest_examples: int = 0
    max_words: int = MAX_WORDS  # Words per transcript block.
    caption_seconds: float = DURATION  # How long each caption lasts.
    temperature: float = 0.0  # 0: greedy.
    top_p: float = 1.0
    max_tokens: int = 256  # Reply length per block.
    seed: int = 0  # Seed sent with every request (part of the cache key).
    describe_frames: bool = False  # Describe frames with the backend (image-LM side) and fuse them in.
    frame_every: float = 4.0  # Seconds between described frames.
    # Send each block's video segment with its prompt (sparrow, or openai to a video server).
    see_video: bool = False
    cache: str | None = None  # Response cache folder (default: OUT/cache).

    def decoding(self) -> Decoding:
        return Decoding(self.temperature, self.top_p, self.max_tokens)

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise BackendError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "sparrow" and not self.model:
            raise BackendError("the sparrow backend needs --model CHECKPOINT")
        if self.backend == "hf" and (self.describe_frames or self.see_video):
            raise BackendError("the hf backend reads text only: use openai or sparrow to see frames or video")
        if self.nearest_examples < 0:
            raise BackendError("nearest_examples must be >= 0")
        if self.max_words < 1 or self.caption_seconds <= 0 or self.frame_every <= 0:
            raise BackendError("max words, caption seconds and frame interval must be positive")
        self.decoding().validate()


def build_backend(cfg: RefineConfig, cache_dir: str) -> Backend:
    """The configured backend behind the response cache."""
    inner: Backend
    if cfg.backend == "openai":
        from sparrow.chat.openai import OpenAIBackend, OpenAIConfig

        inner = OpenAIBackend(
            OpenAIConfig(cfg.base_url, cfg.model, cfg.api_key_env, cfg.concurrency, cfg.timeout, cfg.retries)
        )
    elif cfg.backend == "sparrow":
        from sparrow.chat.sparrow import SparrowBackend, SparrowConfig

        inner = SparrowBackend(SparrowConfig(str(cfg.model), cfg.device))
    else:
        from sparrow.chat.hf import HFBackend, HFConfig

        inner = HFBackend(HFConfig(cfg.model, cfg.batch_size, cfg.device))
    return CachedBackend(inner, ResponseCache(cache_dir))
