"""An experiment grid: a base recipe, variants of it (dotted-key overrides), seeds, one benchmark and
its eval settings; ``Grid.runs()`` expands it into one :class:`RunSpec` per (variant, seed).

    name: connector                       # title of the table and report (default: the file's name)
    recipe: ../tiny/apollo-3stage.yaml    # a `sparrow train` recipe; paths relative to this file
    data_root: ../../world                # the data the recipe's sources are relative to
    eval:
      bench: ../../world/bench_test.jsonl # default: DATA_ROOT/bench_test.jsonl
      conditions: [video, text, swap]     # default: video, text (and swap where sparrow.eval has it)
      method: cloze_norm
    seeds: [0, 1]
    max_steps: null                       # cap every stage (quick runs)
    overrides: {num_workers: 0}           # applied to every variant first
    baseline: perceiver
    variants:
      perceiver: {}
      mlp_pool: {model.connector.type: mlp_pool}
      more-data: {data_root: ../../world-3000}   # a variant may name its own data root

Every variant is checked when the grid is loaded (``Recipe.from_dict`` on the overridden mapping), so a
bad key fails before any run starts.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparrow.experiment.errors import ExperimentError
from sparrow.experiment.overrides import apply_dotted
from sparrow.paths import resolve_path
from sparrow.yamlio import check_mapping, load_yaml

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a variant name is a folder name
BENCH = "bench_test.jsonl"


def default_conditions() -> tuple[str, ...]:
    """video and text, and swap where ``sparrow.eval`` has that condition."""
    from sparrow.eval.conditions import CONDITIONS

    return ("video", "text") + (("swap",) if "swap" in CONDITIONS else ())


@dataclass
class EvalSpec:
    """How every run's final model is evaluated (the keys of the grid's ``eval`` mapping)."""

    bench: Path | None = None
    conditions: tuple[str, ...] = field(default_factory=default_conditions)
    method: str = "cloze_norm"
    batch_size: int = 8
    sampling: str | None = None  # e.g. "strategy=uniform,num_frames=8" (fields of SamplingConfig)
    max_new_tokens: int = 16
    media_root: str | None = None
    bootstrap: int = 1000  # resamples of every interval

    def options(self, name: str, threads: int | None, device: str) -> Any:
        """The ``EvalOptions`` of one run (checked: unknown conditions or methods raise EvalError)."""
        from sparrow.eval.config import EvalOptions

        options = EvalOptions(
            conditions=tuple(self.conditions),
            method=self.method,
            sampling=self.sampling,
            name=name,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            device=device,
            media_root=self.media_root,
            bootstrap=self.bootstrap,
            threads=threads,
        )
        options.validate()
        return options

    def fingerprint(self) -> dict[str, Any]:
        """What the predictions depend on (not the conditions: adding one to a grid is allowed)."""
        assert self.bench is not None
        return {
            "bench_sha1": hashlib.sha1(self.bench.read_bytes()).hexdigest(),
            "method": self.method,
            "sampling": self.sampling,
            "max_new_tokens": self.max_new_tokens if self.method == "generate" else None,
            "media_root": self.media_root,
        }


@dataclass(frozen=True)
class RunSpec:
    """One (variant, seed): the recipe mapping with the overrides and the seed applied, ready for
    ``Recipe.from_dict(recipe, base_dir)``."""

    variant: str
    seed: int
    recipe: dict[str, Any]
    base_dir: str
    data_root: str
    max_steps: int | None

    @property
    def rel_dir(self) -> str:
        """The run's folder under the experiment's output."""
        return f"runs/{self.variant}/seed{self.seed}"

    def build_recipe(self) -> Any:
        from sparrow.train.recipe import Recipe

        return Recipe.from_dict(copy.deepcopy(self.recipe), base_dir=Path(self.base_dir))

    def fingerprint(self, eval_spec: EvalSpec) -> dict[str, Any]:
        """What a run directory must have been made with to be reused (the guard's settings)."""
        model = self.build_recipe().model_config()
        return {
            "recipe": self.recipe,
            "model": None if model is None else model.to_dict(),
            "recipe_dir": self.base_dir,
            "data_root": self.data_root,
            "max_steps": self.max_steps,
            "eval": eval_spec.fingerprint(),
        }


@dataclass
class Variant:
    name: str
    overrides: dict[str, Any]
    data_root: Path


@dataclass
class Grid:
    """A loaded grid; the field names are the YAML keys (see the module's docstring)."""

    recipe: Path
    data_root: Path
    variants: list[Variant]
    baseline: str
    seeds: tuple[int, ...] = (0,)
    eval: EvalSpec = field(default_factory=EvalSpec)
    overrides: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None
    name: str = "experiment"

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    def runs(self) -> list[RunSpec]:
        """One RunSpec per (variant, seed), variants in the grid's order; every variant is validated."""
        base = load_yaml(self.recipe, "recipe", ExperimentError)
        if not isinstance(base, dict):
            raise ExperimentError(f"recipe {str(self.recipe)!r} must be a mapping")
        base_dir = self.recipe.resolve().parent
        common = apply_dotted(base, self.overrides, base_dir, "overrides")
        runs = []
        for v in self.variants:
            recipe = apply_dotted(common, v.overrides, base_dir, f"variant {v.name!r}")
            for seed in self.seeds:
                run = RunSpec(
                    v.name, seed, {**recipe, "seed": seed}, str(base_dir), str(v.data_root), self.max_steps
                )
                _check_recipe(run)
                runs.append(run)
        return runs


def _check_recipe(run: RunSpec) -> None:
    from sparrow.model.config import ConfigError
    from sparrow.train.recipe import RecipeError

    try:
        run.build_recipe().model_config()
    except (RecipeError, ConfigError, TypeError) as e:
        raise ExperimentError(f"variant {run.variant!r}: {str(e).splitlines()[0]}") from e


def _path(value: Any, folder: Path, what: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ExperimentError(f"{what} must be a path, got {value!r}")
    return resolve_path(value, folder).resolve()


def _variants(raw: Any, folder: Path, data_root: Path) -> list[Variant]:
    if not isinstance(raw, dict) or not raw:
        raise ExperimentError("variants must be a non-empty mapping: name -> {dotted.key: value, ...}")
    out = []
    for name, overrides in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ExperimentError(f"variant name {name!r} must be letters, digits, '.', '_' or '-'")
        overrides = dict(overrides or {}) if isinstance(overrides, dict) or overrides is None else None
        if overrides is None:
            raise ExperimentError(f"variant {name!r} must be a mapping of dotted keys to values")
        root = overrides.pop("data_root", None)
        root_path = data_root if root is None else _path(root, folder, f"variant {name!r}: data_root")
        out.append(Variant(name, overrides, root_path))
    return out


def _seeds(raw: Any) -> tuple[int, ...]:
    seeds = [raw] if isinstance(raw, int) else raw
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ExperimentError(f"seeds must be an integer or a non-empty list of integers, got {raw!r}")
    if len(set(seeds)) != len(seeds):
        raise ExperimentError(f"seeds must be distinct, got {seeds}")
    return tuple(seeds)


def _eval_spec(raw: Any, folder: Path, data_root: Path) -> EvalSpec:
    d = check_mapping(raw or {}, EvalSpec, ExperimentError, "eval")
    d["bench"] = _path(d["bench"], folder, "eval.bench") if d.get("bench") else data_root / BENCH
    if "conditions" in d:
        conditions = [d["conditions"]] if isinstance(d["conditions"], str) else d["conditions"]
        d["conditions"] = tuple(conditions or ())
    spec = EvalSpec(**d)
    from sparrow.eval.errors import EvalError

    try:
        spec.options("check", None, "cpu")
    except (EvalError, TypeError) as e:
        raise ExperimentError(f"eval: {e}") from e
    if not spec.bench.is_file():
        raise ExperimentError(f"eval.bench: benchmark file not found: {spec.bench}")
    return spec


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid YAML (its relative paths are relative to its folder)."""
    path = Path(path)
    raw = load_yaml(path, "experiment grid", ExperimentError)
    d = check_mapping(raw, Grid, ExperimentError, f"experiment grid {str(path)!r}")
    folder = path.resolve().parent
    for key in ("recipe", "data_root", "variants", "baseline"):
        if key not in d:
            raise ExperimentError(f"experiment grid {str(path)!r} needs '{key}'")
    d["recipe"] = _path(d["recipe"], folder, "recipe")
    d["data_root"] = _path(d["data_root"], folder, "data_root")
    d["variants"] = _variants(d["variants"], folder, d["data_root"])
    for v in d["variants"]:
        if not v.data_root.is_dir():
            raise ExperimentError(f"variant {v.name!r}: data root {str(v.data_root)!r} is not a directory")
    d["seeds"] = _seeds(d.get("seeds", [0]))
    d["eval"] = _eval_spec(d.get("eval"), folder, d["data_root"])
    if not isinstance(d.get("overrides") or {}, dict):
        raise ExperimentError("overrides must be a mapping of dotted keys to values")
    d["overrides"] = dict(d.get("overrides") or {})
    d.setdefault("name", path.stem)
    grid = Grid(**d)
    if grid.baseline not in grid.variant_names():
        raise ExperimentError(
            f"baseline {grid.baseline!r} is not a variant; variants: {grid.variant_names()}"
        )
    if grid.max_steps is not None and (type(grid.max_steps) is not int or grid.max_steps < 1):
        raise ExperimentError(f"max_steps must be an integer >= 1, got {grid.max_steps!r}")
    grid.runs()  # every variant's recipe is checked now, before any run starts
    return grid
