"""Training recipes: a model plus a list of stages, loaded from YAML.

Each stage names the parts it trains (``vision`` / ``connector`` / ``lm``; the others stay frozen), a
learning rate per part, its data mixture, frame sampling, length (steps or epochs), batch geometry,
sequence length, packing and loss. Stage k starts from stage k-1's checkpoint. Apollo's recipe is
three stages: connector on captions, then encoders + connector on video, then connector + LM on the
mix; ``configs/tiny/apollo-3stage.yaml`` is the embedded tiny version.

``trainable`` is a list of parts (full fine-tuning) or a mapping part -> settings, where
``{lora: {r, alpha, dropout, targets}}`` trains LoRA adapters of that part instead of its weights
(``sparrow.model.lora``), e.g. ``trainable: {connector: {}, lm: {lora: {r: 16, alpha: 32}}}``.

Batch geometry: ``batch_size`` is the *global* number of samples per optimizer step. Give either
``micro_batch_size`` (samples per forward pass on one device) or ``grad_accum``; the other follows from
the number of processes, so the same recipe gives the same optimisation on 1 or N devices.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.adapters.spec import is_hf_model_mapping
from sparrow.model.config import VideoLLMConfig
from sparrow.model.errors import ConfigError
from sparrow.model.lora import AdapterConfig, LoraError
from sparrow.model.visual_terms import VisualTerms
from sparrow.paths import resolve_path
from sparrow.train.mixture import MixtureConfig, MixtureError
from sparrow.yamlio import load_yaml, unknown_keys

PARTS = ("vision", "connector", "lm")
LOSSES = ("ce", "tailr", "adatailr")
STRATEGIES = ("ddp", "fsdp")


class RecipeError(ValueError):
    """A recipe is malformed; the message names the stage and the field."""


@dataclass
class LossConfig:
    """``ce``; ``tailr`` (gamma, min_weight, label_smoothing); ``adatailr`` (lam, momentum; gamma set =
    constant-Γ mode)."""

    name: str = "ce"
    gamma: float | None = None
    min_weight: float = 0.0
    label_smoothing: float = 0.0
    lam: float = 1.0
    momentum: float = 0.99

    def validate(self, where: str) -> None:
        if self.name not in LOSSES:
            raise RecipeError(f"{where}: loss.name must be one of {LOSSES}, got {self.name!r}")
        if self.name == "tailr" and (self.gamma is None or not self.gamma > 0):
            raise RecipeError(f"{where}: the tailr loss needs gamma > 0")
        if not 0 <= self.min_weight <= 1 or not 0 <= self.label_smoothing < 1:
            raise RecipeError(f"{where}: loss.min_weight must be in [0, 1] and label_smoothing in [0, 1)")


@dataclass
class StageConfig:
    name: str
    trainable: list[str]
    lr: dict[str, float]
    mixture: MixtureConfig
    sampling: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 8
    micro_batch_size: int | None = None
    grad_accum: int | None = None
    seq_length: int = 2048
    packing: bool = False
    loss: LossConfig = field(default_factory=LossConfig)
    warmup_ratio: float = 0.03
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    checkpoint_every: int | None = None
    lora: dict[str, AdapterConfig] = field(default_factory=dict)  # parts trained through LoRA adapters

    def micro_and_accum(self, world_size: int = 1) -> tuple[int, int]:
        """(samples per forward pass per device, micro-batches per optimizer step)."""
        per_rank, rem = divmod(self.batch_size, world_size)
        if rem:
            raise RecipeError(
                f"stage {self.name!r}: batch_size {self.batch_size} is not divisible by {world_size} processes"
            )
        if self.grad_accum is not None:
            micro, rem = divmod(per_rank, self.grad_accum)
            if rem or micro < 1:
                raise RecipeError(
                    f"stage {self.name!r}: batch_size {self.batch_size} / {world_size} processes is not "
                    f"divisible by grad_accum {self.grad_accum}"
                )
            return micro, self.grad_accum
        micro = min(self.micro_batch_size or per_rank, per_rank)
        accum, rem = divmod(per_rank, micro)
        if rem:
            raise RecipeError(
                f"stage {self.name!r}: batch_size {self.batch_size} / {world_size} processes is not a "
                f"multiple of micro_batch_size {micro}"
            )
        return micro, accum

    def num_steps(self, epoch_size: int) -> int:
        """Optimizer steps of this stage: ``steps``, or ``epochs`` over a mixture epoch (rounded up)."""
        if self.steps is not None:
            return int(self.steps)
        return max(1, math.ceil(float(self.epochs or 1.0) * epoch_size / self.batch_size))

    def validate(self) -> None:
        where = f"stage {self.name!r}"
        if not self.trainable or any(p not in PARTS for p in self.trainable):
            raise RecipeError(
                f"{where}: trainable must be a non-empty subset of {PARTS}, got {self.trainable}"
            )
        not_trained = sorted(set(self.lora) - set(self.trainable))
        if not_trained:
            raise RecipeError(f"{where}: lora for part(s) {not_trained} that the stage does not train")
        missing = [p for p in self.trainable if p not in self.lr]
        if missing:
            raise RecipeError(f"{where}: no learning rate for trainable part(s) {missing}")
        if any(not (isinstance(v, (int, float)) and v >= 0) for v in self.lr.values()):
            raise RecipeError(f"{where}: learning rates must be numbers >= 0")
        if self.steps is not None and self.epochs is not None:
            raise RecipeError(f"{where}: give steps or epochs, not both")
        if self.steps is not None and self.steps < 1:
            raise RecipeError(f"{where}: steps must be >= 1")
        if self.batch_size < 1 or self.seq_length < 8:
            raise RecipeError(f"{where}: batch_size must be >= 1 and seq_length >= 8")
        if self.micro_batch_size is not None and self.grad_accum is not None:
            raise RecipeError(f"{where}: give micro_batch_size or grad_accum, not both")
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise RecipeError(f"{where}: warmup_ratio must be in [0, 1) and min_lr_ratio in [0, 1]")
        self.loss.validate(where)


@dataclass
class FeatureCacheConfig:
    """The frozen-encoder feature cache of a run (``sparrow.model.feature_cache``): used in the stages
    that keep the vision tower frozen. ``memory_mb`` bounds the in-memory LRU; ``dir`` (relative to
    the run directory, or absolute to share it between runs) adds a disk cache."""

    enabled: bool = True
    memory_mb: float = 1024.0
    dir: str | None = None

    def validate(self) -> None:
        if not isinstance(self.enabled, bool):
            raise RecipeError("feature_cache.enabled must be true or false")
        if not isinstance(self.memory_mb, (int, float)) or self.memory_mb < 0:
            raise RecipeError(f"feature_cache.memory_mb must be a number >= 0, got {self.memory_mb!r}")

    @classmethod
    def from_dict(cls, d: Any) -> FeatureCacheConfig:
        if isinstance(d, FeatureCacheConfig):
            return d
        if isinstance(d, bool):
            return cls(enabled=d)
        if not isinstance(d, dict):
            raise RecipeError("feature_cache must be true, false or a mapping (enabled, memory_mb, dir)")
        unknown, _ = unknown_keys(d, cls)
        if unknown:
            raise RecipeError(f"unknown feature_cache key(s) {unknown}")
        return cls(**d)


@dataclass
class Recipe:
    """``model``: a model-config mapping (``VideoLLMConfig`` fields) or a path to its YAML, or an HF-native
    model (``{hf: PATH}`` / ``{hf_config: {...}}``, ``sparrow.adapters``); ``init_from``: a checkpoint
    directory to start from instead (``sparrow.adapters.load_pretrained``: either kind)."""

    stages: list[StageConfig]
    model: dict[str, Any] | str | None = None
    init_from: str | None = None
    seed: int = 0
    # auto (bf16 autocast on GPUs and on CPUs with AMX / AVX512-BF16, else fp32) | bf16 | fp32
    precision: str = "auto"
    gradient_checkpointing: bool = False
    strategy: str = "ddp"  # ddp | fsdp, when launched with several processes
    num_workers: int = 1
    log_every: int = 1
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    feature_cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)
    # Decoded clips kept in memory per data worker (MiB, 0 = decode every time): epochs after the first
    # read their frames from memory instead of the decoder.
    clip_cache_mb: float = 512.0
    # The loss split's visual terms (sparrow.model.visual_terms): auto (the world's vocabulary on world
    # records with media) | world | none | a list of terms | {terms, patterns, sources}.
    visual_terms: Any = "auto"
    base_dir: str | None = None  # directory of the YAML file; relative model paths resolve against it

    def validate(self) -> None:
        if not self.stages:
            raise RecipeError("a recipe needs at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise RecipeError(f"stage names must be unique, got {names}")
        if self.model is None and self.init_from is None:
            raise RecipeError("a recipe needs 'model' (config) or 'init_from' (checkpoint directory)")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise RecipeError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.strategy not in STRATEGIES:
            raise RecipeError(f"strategy must be ddp or fsdp, got {self.strategy!r}")
        self.feature_cache.validate()
        if not isinstance(self.clip_cache_mb, (int, float)) or self.clip_cache_mb < 0:
            raise RecipeError(f"clip_cache_mb must be a number >= 0, got {self.clip_cache_mb!r}")
        self.visual_terms_spec()
        for s in self.stages:
            s.validate()

    def visual_terms_spec(self) -> VisualTerms | None:
        """The loss split's terms (None: no split)."""
        try:
            return VisualTerms.from_spec(self.visual_terms)
        except ConfigError as e:
            raise RecipeError(str(e)) from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = [{**asdict(s), "mixture": s.mixture.to_dict()} for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: Any, base_dir: str | Path | None = None) -> Recipe:
        if not isinstance(d, dict):
            raise RecipeError(f"a recipe must be a mapping, got {type(d).__name__}")
        d = dict(d)
        unknown, known = unknown_keys(d, cls)
        if unknown:
            raise RecipeError(f"unknown recipe key(s) {unknown}; known: {known}")
        stages = [_stage(s, i) for i, s in enumerate(d.pop("stages", None) or [])]
        d.setdefault("base_dir", None if base_dir is None else str(base_dir))
        if "feature_cache" in d:
            d["feature_cache"] = FeatureCacheConfig.from_dict(d["feature_cache"])
        recipe = cls(stages=stages, **d)
        recipe.validate()
        return recipe

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        """Read a recipe; its relative paths are relative to the recipe file's folder."""
        return cls.from_dict(load_yaml(path, "recipe", RecipeError), base_dir=Path(path).resolve().parent)

    def resolve(self, relpath: str) -> Path:
        """A path from the recipe, relative to the recipe file's directory."""
        return resolve_path(relpath, self.base_dir)

    def model_config(self) -> VideoLLMConfig | None:
        """The model config the recipe builds from (a YAML path or an inline mapping); None when the
        recipe starts from a checkpoint (``init_from``), which carries its own."""
        if self.model is None or is_hf_model_mapping(self.model):
            return None  # an HF-native model (sparrow.adapters) carries no VideoLLMConfig
        if isinstance(self.model, str):
            return VideoLLMConfig.from_yaml(self.resolve(self.model))
        cfg = VideoLLMConfig.from_dict(copy.deepcopy(self.model))
        cfg.resolve_paths(self.base_dir)  # an inline model's paths are relative to the recipe file too
        return cfg


def _stage(d: Any, i: int) -> StageConfig:
    if not isinstance(d, dict):
        raise RecipeError(f"stage #{i + 1} must be a mapping")
    d = dict(d)
    d.setdefault("name", f"stage{i + 1}")
    where = f"stage {d['name']!r}"
    unknown, known = unknown_keys(d, StageConfig)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown}; known: {known}")
    if "mixture" not in d:
        raise RecipeError(f"{where}: needs a 'mixture' (list of sources)")
    try:
        d["mixture"] = MixtureConfig.from_dict(d["mixture"])
    except MixtureError as e:
        raise RecipeError(f"{where}: {e}") from e
    d["trainable"], d["lora"] = _trainable(d.get("trainable"), d.get("lora"), where)
    lr = d.get("lr")
    if isinstance(lr, (int, float)):
        lr = {p: float(lr) for p in d["trainable"]}
    if not isinstance(lr, dict):
        raise RecipeError(f"{where}: lr must be a number or a mapping part -> lr")
    d["lr"] = {k: float(v) for k, v in lr.items()}
    loss = d.get("loss", "ce")
    if isinstance(loss, str):
        loss = {"name": loss}
    if not isinstance(loss, dict):
        raise RecipeError(f"{where}: loss must be a name or a mapping")
    bad, _ = unknown_keys(loss, LossConfig)
    if bad:
        raise RecipeError(f"{where}: unknown loss key(s) {bad}")
    d["loss"] = LossConfig(**loss)
    d["sampling"] = dict(d.get("sampling") or {})
    return StageConfig(**d)


def _trainable(value: Any, lora: Any, where: str) -> tuple[list[str], dict[str, AdapterConfig]]:
    """``trainable`` as a name, a list, or a mapping part -> ``{}`` / ``{lora: {...}}``; ``lora`` (as
    ``to_dict`` writes it) may also come separately. Returns (parts, LoRA settings per part)."""
    adapters: dict[str, Any] = dict(lora or {})
    if isinstance(value, dict):
        parts = list(value)
        for part, spec in value.items():
            spec = spec or {}
            if not isinstance(spec, dict) or set(spec) - {"lora"}:
                raise RecipeError(
                    f"{where}: trainable.{part} must be {{}} or {{lora: {{...}}}}, got {spec!r}"
                )
            if "lora" in spec:
                adapters[part] = spec["lora"] or {}
    else:
        parts = [value] if isinstance(value, str) else list(value or [])
    try:
        return parts, {p: AdapterConfig.from_dict(a, f"{where}: lora of {p}") for p, a in adapters.items()}
    except LoraError as e:
        raise RecipeError(str(e)) from e
