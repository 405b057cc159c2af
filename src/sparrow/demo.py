"""The main job: the whole pipeline end to end on the embedded world, with an HTML report.

1. generate the world (videos, benchmark, text corpus)            -> OUT/world
2. synthesize pseudo-videos from the world's text corpus (Sparrow) -> OUT/world/synth
3. train the tiny video-LLM with Apollo's 3 stages on the mix, and a video-only baseline alongside
                                                                    -> OUT/runs/{apollo-3stage,video-only}
4. evaluate every checkpoint on the test benchmark under the video, centre-frame and text-only
   conditions, and curate the benchmark from those results (ApolloBench) -> OUT/eval, OUT/curate
5. write OUT/report.html

Every step resumes: re-running the same command skips what is finished and continues what is not.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.io import atomic_write_text

CHANCE = 0.25  # four options per question
EVAL_MODALITIES = ("video", "frame", "text")
# Sources the video-only baseline leaves out of every stage's mixture.
NON_VIDEO_SOURCES = ("synthetic", "text")
MAIN_RUN, BASELINE_RUN, REFERENCE = "apollo-3stage", "video-only", "untrained"


class DemoError(RuntimeError):
    """The demo cannot run (missing recipe, unwritable output)."""


def default_recipe() -> Path:
    """``configs/tiny/apollo-3stage.yaml`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "configs" / "tiny" / "apollo-3stage.yaml"


@dataclass
class DemoConfig:
    out: Path
    seed: int = 0
    preset: str = "tiny"
    # More training videos and a larger test split than the bare tiny preset: enough questions for the
    # tiny model to learn from in minutes, and a confidence interval narrow enough to read.
    world_overrides: dict[str, Any] = field(
        default_factory=lambda: {"videos": {"train": 300, "val": 10, "test": 120}}
    )
    recipe: Path | None = None  # default: configs/tiny/apollo-3stage.yaml
    max_steps: int | None = None  # cap every training stage (quick runs)
    steps_scale: float = 1.0  # multiply every stage's steps (0.25: a quick look; 2: a longer run)
    workers: int = 2
    threads: int | None = None
    synth_size: int = 224  # rendered frame side; the tiny model sees 64 px anyway
    synth_font_size: int = 12
    eval_batch_size: int = 8
    # cloze_norm: each option's text scored after the bare question, per token. A sub-million-parameter
    # model trained for minutes cannot learn to bind option letters to contents; it can learn what the
    # answer is. Per token, because a summed score favours short options (an untrained model then scores
    # ~0.33 instead of 0.25 on this benchmark).
    eval_method: str = "cloze_norm"
    bootstrap: int = 1000
    curate_top_k: int | None = None
    baseline: bool = True
    # Evaluate the untrained model too (same config and seed as the runs start from): under cloze scoring
    # "chance" is not exactly 1/4, so the demo measures the floor instead of assuming it.
    reference: bool = True
    overwrite: bool = False  # start again: remove what an earlier demo wrote into ``out``

    def recipe_path(self) -> Path:
        path = Path(self.recipe) if self.recipe else default_recipe()
        if not path.is_file():
            raise DemoError(f"recipe not found: {path} (pass --recipe)")
        return path


@dataclass
class DemoCallbacks:
    """Hooks the CLI uses for progress bars. ``step(name)`` when a step starts; ``items(step, done, total)``
    as a step progresses; ``train`` is handed to the trainer as its progress callback."""

    step: Callable[[str], None] | None = None
    items: Callable[[str, int, int | None], None] | None = None
    train: Callable[[dict[str, Any]], None] | None = None

    def start(self, name: str) -> None:
        if self.step:
            self.step(name)

    def advance(self, name: str, done: int, total: int | None) -> None:
        if self.items:
            self.items(name, done, total)


# ------------------------------------------------------------------------------------------ steps


def make_world(cfg: DemoConfig, cb: DemoCallbacks) -> Path:
    from sparrow.world.generate import generate_world

    out = cfg.out / "world"
    cb.start("world")
    count = 0

    def on_item(_result: Any) -> None:
        nonlocal count
        count += 1
        cb.advance("world", count, None)

    generate_world(
        out, seed=cfg.seed, preset=cfg.preset, workers=cfg.workers, on_item=on_item, **cfg.world_overrides
    )
    return out


def make_synth(cfg: DemoConfig, world: Path, cb: DemoCallbacks) -> dict[str, Any]:
    from sparrow.render import RenderConfig
    from sparrow.synth import SynthConfig, synthesize

    cb.start("synth")
    config = SynthConfig(
        source="world-corpus",
        render=RenderConfig(
            width=cfg.synth_size, height=cfg.synth_size, font_size=cfg.synth_font_size, margin=10
        ),
    )
    count = 0

    def on_result(_r: Any, _frames: int) -> None:
        nonlocal count
        count += 1
        cb.advance("synth", count, None)

    summary = synthesize(
        [world / "corpus_train.jsonl"], world / "synth", config, workers=cfg.workers, on_result=on_result
    )
    return summary.to_dict()


def video_only_variant(recipe: Any) -> Any:
    """The same recipe with the synthetic and text sources removed from every stage (a stage that would
    be left empty keeps its sources): the baseline that isolates what the mix adds."""
    from sparrow.train.recipe import Recipe

    d = copy.deepcopy(recipe.to_dict())
    for stage in d["stages"]:
        sources = stage["mixture"]["sources"]
        kept = [s for s in sources if s.get("name") not in NON_VIDEO_SOURCES]
        if kept:
            stage["mixture"]["sources"] = kept
    base_dir = d.pop("base_dir", None)
    return Recipe.from_dict(d, base_dir=None if base_dir is None else Path(base_dir))


def scale_steps(recipe: Any, scale: float) -> Any:
    """The recipe with every stage's ``steps`` multiplied by ``scale`` (at least 1 step each)."""
    if scale == 1.0:
        return recipe
    recipe = copy.deepcopy(recipe)
    for stage in recipe.stages:
        if stage.steps is not None:
            stage.steps = max(1, round(stage.steps * scale))
        elif stage.epochs is not None:
            stage.epochs = stage.epochs * scale
    return recipe


def load_recipe(cfg: DemoConfig) -> Any:
    from sparrow.train.recipe import Recipe

    return scale_steps(Recipe.from_yaml(cfg.recipe_path()), cfg.steps_scale)


def make_reference(cfg: DemoConfig, recipe: Any) -> Path:
    """Save the untrained model: built from the recipe's model config with the recipe's seed, in the same
    order as the trainer builds it, with the last stage's frame sampling (what the final model is
    evaluated with). A recipe that starts from a checkpoint (``init_from``) has that checkpoint as its
    reference. Evaluated like the trained models, it measures the score of knowing nothing."""
    if recipe.init_from:
        return recipe.resolve(recipe.init_from)
    out = cfg.out / "runs" / REFERENCE
    if (out / "config.json").is_file():
        return out
    import torch

    from sparrow.model import Processor, VideoLLM, VideoLLMConfig
    from sparrow.train.data import merge_sampling

    m = recipe.model
    mcfg = (
        VideoLLMConfig.from_yaml(recipe.resolve(m))
        if isinstance(m, str)
        else VideoLLMConfig.from_dict(copy.deepcopy(m))
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        processor = Processor(mcfg)
        model = VideoLLM(mcfg, tokenizer=processor.tokenizer)
    processor.cfg = dataclasses.replace(
        mcfg, sampling=merge_sampling(mcfg.sampling, recipe.stages[-1].sampling)
    )
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, processor=processor)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def train_runs(cfg: DemoConfig, world: Path, cb: DemoCallbacks) -> dict[str, dict[str, Any]]:
    from sparrow.train.trainer import RunOptions, auto_threads, train

    recipe = load_recipe(cfg)
    runs = {MAIN_RUN: recipe}
    if cfg.baseline:
        runs[BASELINE_RUN] = video_only_variant(recipe)
    threads = cfg.threads or auto_threads(recipe.num_workers, 1)
    summaries = {}
    for name, r in runs.items():
        cb.start(f"train {name}")
        opts = RunOptions(
            out=cfg.out / "runs" / name,
            data_root=world,
            resume=True,  # a finished run returns at once; an interrupted one continues exactly
            max_steps=cfg.max_steps,
            progress=cb.train,
            threads=threads,
        )
        summaries[name] = train(r, opts)
    return summaries


def checkpoints(cfg: DemoConfig) -> dict[str, Path]:
    """The models the demo evaluates: the untrained reference, every stage of the main run and the
    baseline's final model."""
    out: dict[str, Path] = {}
    if cfg.reference:
        out[REFERENCE] = make_reference(cfg, load_recipe(cfg))
    main = cfg.out / "runs" / MAIN_RUN
    for stage_dir in sorted(p for p in main.glob("stage*") if (p / "config.json").is_file()):
        out[f"apollo-{stage_dir.name}"] = stage_dir
    baseline = cfg.out / "runs" / BASELINE_RUN / "final"
    if (baseline / "config.json").is_file():
        out[f"{BASELINE_RUN}-final"] = baseline
    return out


def final_name(metrics: dict[str, Any]) -> str:
    """The main run's last stage (the model the demo trained)."""
    stages = [n for n in metrics if n.startswith("apollo-stage")]
    return max(stages, key=lambda n: int(n.split("-")[1][len("stage") :])) if stages else next(iter(metrics))


def evaluate_all(cfg: DemoConfig, world: Path, cb: DemoCallbacks) -> dict[str, dict[str, dict[str, Any]]]:
    from sparrow.eval.runner import EvalOptions, evaluate_checkpoint
    from sparrow.model.processor import ClipCache

    bench = world / "bench_test.jsonl"
    cache = ClipCache(4096)  # every checkpoint samples the same frames: decode each clip once
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    for name, ckpt in checkpoints(cfg).items():
        cb.start(f"eval {name}")
        options = EvalOptions(
            modalities=EVAL_MODALITIES,
            method=cfg.eval_method,
            name=name,
            threads=cfg.threads or 1,
            batch_size=cfg.eval_batch_size,
            bootstrap=cfg.bootstrap,
            seed=cfg.seed,
            buckets=(30.0, 120.0),
        )
        results = evaluate_checkpoint(
            ckpt,
            bench,
            cfg.out / "eval" / name,
            options,
            on_progress=lambda mod, done, total, name=name: cb.advance(f"eval {name} {mod}", done, total),
            clip_cache=cache,
        )
        metrics[name] = {r.modality: r.metrics for r in results}
    return metrics


def curate_all(cfg: DemoConfig, names: list[str], cb: DemoCallbacks) -> dict[str, Any]:
    from sparrow.eval.curate import CurateConfig
    from sparrow.eval.runner import curate_results

    cb.start("curate")
    # The untrained reference is no model a benchmark would be curated with: its "right" answers are
    # scoring biases, which would make the text/frame-answerable vote noisier.
    specs = [str(cfg.out / "eval" / n / m) for n in names if n != REFERENCE for m in EVAL_MODALITIES]
    done = curate_results(
        specs, cfg.out / "curate", CurateConfig(top_k=cfg.curate_top_k, buckets=(30.0, 120.0))
    )
    return done.document


# ----------------------------------------------------------------------------------------- report


def _fmt_time(t: float) -> str:
    return f"{int(t) // 60:02d}:{int(t) % 60:02d}"


def _world_strips(world: Path, figs: Path, count: int = 2) -> list[Path]:
    from sparrow.report import save_frame_strip
    from sparrow.video import Fps, sample

    videos = sorted((world / "videos").glob("test-*.mp4")) or sorted((world / "videos").glob("*.mp4"))
    out = []
    for k, video in enumerate(videos[:count]):
        clip = sample(video, Fps(1.0, max_frames=6), size=128)
        labels = [f"{_fmt_time(t)} (#{i})" for t, i in zip(clip.timestamps, clip.indices, strict=True)]
        out.append(save_frame_strip(list(clip.frames), labels, figs / f"world_frames_{k + 1}.png"))
    return out


def _synth_strip(world: Path, figs: Path) -> Path | None:
    from PIL import Image

    from sparrow.records import read_samples
    from sparrow.report import save_frame_strip

    path = world / "synth" / "samples.jsonl"
    if not path.is_file():
        return None
    for s in read_samples(path):
        if hasattr(s, "media") and s.media:
            paths = (s.media[0].paths or [])[:4]
            frames = [np.asarray(Image.open(path.parent / p).convert("RGB")) for p in paths]
            return save_frame_strip(
                frames, [f"frame {i + 1}" for i in range(len(frames))], figs / "synth_frames.png", scale=3
            )
    return None


def _mixture_rows(run: Path) -> list[list[Any]]:
    path = run / "mixture_report.json"
    if not path.is_file():
        return []
    rows = []
    for st in json.loads(path.read_text()).get("stages", []):
        for src in st.get("sources", []):
            rows.append(
                [
                    f"{st['stage']} {st['name']}",
                    src["name"],
                    src["drawn"],
                    src["target_share"],
                    src["drawn_share"],
                    src.get("skipped", 0),
                ]
            )
    return rows


def _correct_by_id(path: Path) -> dict[str, dict[str, Any]]:
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            p = json.loads(line)
            rows[p["id"]] = p
    return rows


def paired_difference(
    a: Path, b: Path, samples: int = 1000, seed: int = 0, category: str | None = None
) -> dict[str, Any]:
    """Accuracy of predictions ``a`` minus predictions ``b`` (two predictions.jsonl files) on the questions
    both answered, with a paired bootstrap 95 % interval: questions are resampled together, so the
    interval of a difference between two models on one benchmark is much narrower than the two
    accuracies' intervals suggest."""
    pa, pb = _correct_by_id(a), _correct_by_id(b)
    ids = [i for i in pa if i in pb and (category is None or pa[i].get("category") == category)]
    d = np.asarray([float(pa[i]["correct"]) - float(pb[i]["correct"]) for i in ids], dtype=np.float64)
    if not len(d):
        return {"diff": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(samples, len(d)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return {"diff": float(d.mean()), "ci95": [float(lo), float(hi)], "n": len(d)}


def comparisons(cfg: DemoConfig, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The differences the report reads: what training added (final vs untrained), what seeing adds (video
    vs text only, overall and per category), and what the mix adds (final vs the video-only baseline)."""
    final = final_name(metrics)
    ev = cfg.out / "eval"

    def pred(name: str, mod: str) -> Path:
        return ev / name / mod / "predictions.jsonl"

    pairs = []
    if REFERENCE in metrics:
        pairs.append(("training", (final, "video"), (REFERENCE, "video"), None))
        pairs.append(("training (text only)", (final, "text"), (REFERENCE, "text"), None))
    pairs.append(("seeing", (final, "video"), (final, "text"), None))
    for cat in metrics[final]["video"].get("by_category", {}):
        pairs.append(("seeing", (final, "video"), (final, "text"), cat))
    base = f"{BASELINE_RUN}-final"
    if base in metrics:
        pairs.append(("the mix", (final, "video"), (base, "video"), None))
    out = []
    for k, (what, (a, ma), (b, mb), cat) in enumerate(pairs):
        if not (pred(a, ma).is_file() and pred(b, mb).is_file()):
            continue
        res = paired_difference(pred(a, ma), pred(b, mb), cfg.bootstrap, cfg.seed + 7 * k, cat)
        out.append({"what": what, "a": a, "a_modality": ma, "b": b, "b_modality": mb, "category": cat, **res})
    return out


def _find(comps: list[dict[str, Any]], what: str, category: str | None = None) -> dict[str, Any] | None:
    return next((c for c in comps if c["what"] == what and c["category"] == category), None)


def _ci(lo_hi: list[float]) -> str:
    return f"{lo_hi[0]:.3f} to {lo_hi[1]:.3f}"


def honest_reading(
    metrics: dict[str, dict[str, dict[str, Any]]],
    curation: dict[str, Any],
    comps: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Plain sentences on what the numbers mean at this scale, derived from the metrics themselves."""
    comps = comps or []
    lines = []
    final = final_name(metrics)
    v = metrics[final]["video"]
    lo, hi = v["ci95"]
    lines.append(
        f"The trained model ({final}) answers {v['accuracy']:.3f} of the {v['n']} test questions right under "
        f"the video condition (95% bootstrap CI {lo:.3f}-{hi:.3f}); chance with four options is "
        f"{CHANCE:.2f}"
        + (", so it is clearly above chance." if lo > CHANCE else ", so it is NOT clearly above chance.")
    )
    ref = metrics.get(REFERENCE, {}).get("video")
    trained = _find(comps, "training")
    if ref and trained:
        clear = trained["ci95"][0] > 0
        lines.append(
            f"Scored the same way, the untrained model (random weights) gets {ref['accuracy']:.3f} "
            f"({ref['ci95'][0]:.3f}-{ref['ci95'][1]:.3f}): option scoring has biases of its own, so that, "
            f"not {CHANCE:.2f}, is the floor. Training added {trained['diff']:+.3f} (paired 95% CI "
            f"{_ci(trained['ci95'])}), "
            + (
                "clearly more than nothing."
                if clear
                else "which is within the noise: the model did not learn."
            )
        )
    seeing = _find(comps, "seeing")
    t = metrics[final].get("text")
    if t and seeing:
        clear = seeing["ci95"][0] > 0
        cats = [c for c in comps if c["what"] == "seeing" and c["category"] and c["ci95"][0] > 0]
        best = max(cats, key=lambda c: c["diff"], default=None)
        text = (
            f"From the question alone, without the video, the same model scores {t['accuracy']:.3f}; "
            f"seeing the video adds {seeing['diff']:+.3f} (paired 95% CI {_ci(seeing['ci95'])}). "
        )
        if clear:
            text += "So part of what it learned is to look, not only what answers are typical. "
        else:
            text += (
                "So at this scale most of what it learned is answer priors: which answers are typical for "
                "which kind of question (and the world's deliberately text-answerable questions), not "
                "what the video shows. "
            )
        if best is not None:
            text += (
                f"The clearest visual gain is in {best['category']}: {best['diff']:+.3f} "
                f"({_ci(best['ci95'])}, n={best['n']})."
            )
        lines.append(text.strip())
    mix = _find(comps, "the mix")
    base = metrics.get(f"{BASELINE_RUN}-final", {}).get("video")
    if base and mix:
        lines.append(
            f"The video-only baseline (the same recipe without the synthetic and text sources) scores "
            f"{base['accuracy']:.3f} on video; the full mix minus the baseline is {mix['diff']:+.3f} "
            f"(paired 95% CI {_ci(mix['ci95'])})"
            + (
                "."
                if mix["ci95"][0] > 0 or mix["ci95"][1] < 0
                else ", within the noise: at this scale the synthetic and text shares neither help nor "
                "hurt measurably."
            )
        )
    s = curation.get("summary", {})
    if s:
        lines.append(
            f"Curation kept {s.get('kept')} of {s.get('questions')} questions (dropped "
            f"{s.get('dropped_text_answerable')} that most of the {s.get('models')} trained checkpoints answer "
            f"from the text alone and {s.get('dropped_frame_answerable')} from the centre frame). With "
            "checkpoints of one small family that share the same answer priors, the vote mostly finds the "
            "questions those priors solve; ApolloBench's recipe assumes many diverse, capable models."
        )
    lines.append(
        "Scale: a model of under a million parameters, trained for minutes on a CPU from random weights, on a "
        "procedural world. The numbers show that every part of the pipeline works end to end and where the "
        "signal comes from; they say nothing about how a real model trained on real data would score."
    )
    return lines


_METHOD_TEXT = {
    "cloze_norm": "cloze, per token: the bare question, each option's text scored as the reply, its "
    "log-probability divided by its number of tokens; the highest wins",
    "cloze": "cloze: the bare question, each option's text scored as the reply (summed log-probability)",
    "loglik": "letter log-likelihood: the lettered prompt, each option's letter scored as the reply's start",
    "generate": "generation: a greedy reply, parsed for the option it names",
}


def _world_rows(wjson: dict[str, Any]) -> list[list[Any]]:
    counts = wjson.get("counts") or {}
    rows = []
    for split in ("train", "val", "test"):
        c = counts.get(split)
        if isinstance(c, dict):
            rows.append(
                [
                    split,
                    c.get("videos"),
                    c.get("long_videos"),
                    round(float(c.get("video_seconds") or 0) / 60, 1),
                    c.get("questions"),
                    c.get("text_answerable"),
                    c.get("centre_frame_suffices"),
                ]
            )
    return rows


def write_report(
    cfg: DemoConfig,
    world: Path,
    metrics: dict,
    curation: dict,
    timings: dict,
    comps: list[dict[str, Any]] | None = None,
) -> Path:
    from sparrow.report import Figure, Report, bar_chart

    comps = comps if comps is not None else comparisons(cfg, metrics)
    figs = cfg.out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    final = final_name(metrics)
    report = Report(
        "Sparrow demo: the whole pipeline on the embedded world",
        intro=f"Output directory: {cfg.out}. Seed {cfg.seed}, world preset {cfg.preset}. Questions are scored "
        f"by {_METHOD_TEXT.get(cfg.eval_method, cfg.eval_method)}.",
    )
    summary = report.section("What the numbers mean")
    for line in honest_reading(metrics, curation, comps):
        summary.text(line)
    if comps:
        summary.table(
            ["adds", "A", "B", "category", "n", "A minus B", "paired 95% CI"],
            [
                [
                    c["what"],
                    f"{c['a']} ({c['a_modality']})",
                    f"{c['b']} ({c['b_modality']})",
                    c["category"] or "all",
                    c["n"],
                    c["diff"],
                    _ci(c["ci95"]),
                ]
                for c in comps
            ],
            caption="Differences on the same questions; the interval resamples questions (paired bootstrap).",
        )

    sec = report.section("1. The world")
    wjson = json.loads((world / "world.json").read_text()) if (world / "world.json").is_file() else {}
    sec.text(
        "Procedural videos of coloured shapes that enter, stop and leave, and words shown on screen; questions "
        "in seven categories with the evidence that answers them. Frames below are what sparrow.video samples "
        "at 1 frame per second, labelled with their timestamp and frame index."
    )
    for k, strip in enumerate(_world_strips(world, figs)):
        sec.figures([Figure(strip, f"Test video {k + 1} sampled at 1 fps: timestamp (frame index)")])
    rows = _world_rows(wjson)
    if rows:
        sec.table(
            [
                "split",
                "videos",
                "long videos",
                "minutes",
                "questions",
                "text-answerable",
                "centre frame suffices",
            ],
            rows,
        )

    sec = report.section("2. Synthetic pseudo-videos (Sparrow)")
    ssum = world / "synth" / "summary.json"
    if ssum.is_file():
        sd = json.loads(ssum.read_text())
        sec.text(
            "The world's long text corpus rendered frame by frame (every word appears once, in order, nothing "
            "clipped); the question and answer stay text. At the tiny model's input size the text is not "
            "legible: here the synthetic share shows the pipeline, not a skill the model can learn."
        )
        sec.table(
            ["records", "samples", "frames", "errors", "truncated"],
            [[sd.get("records"), sd.get("samples"), sd.get("frames"), sd.get("errors"), sd.get("truncated")]],
        )
    sstrip = _synth_strip(world, figs)
    if sstrip:
        sec.figures([Figure(sstrip, "The first frames of a synthetic sample")])

    sec = report.section("3. Training: the mixture actually drawn and the loss curves")
    sec.text(
        "From the trainer's mixture_report.json: what each stage drew from each source against the shares "
        "its recipe asked for (skipped: samples the processor rejected and replaced, see errors.jsonl)."
    )
    for run in (MAIN_RUN, BASELINE_RUN):
        rdir = cfg.out / "runs" / run
        rows = _mixture_rows(rdir)
        if rows:
            sec.table(
                ["stage", "source", "drawn", "target share", "drawn share", "skipped"], rows, caption=run
            )
        curves = sorted(rdir.glob("loss_*.png"))
        if curves:
            sec.figures([Figure(p, f"{run}: {p.stem}", width=420) for p in curves])

    sec = report.section("4. Evaluation: accuracy per model, modality and category")
    if REFERENCE in metrics:
        sec.text(
            f"'{REFERENCE}' is the model before any training (same config and seed): its score is the floor "
            "of this scoring method on this benchmark."
        )
    rows = []
    for name, by_mod in metrics.items():
        for mod in EVAL_MODALITIES:
            m = by_mod.get(mod)
            if m:
                rows.append([name, mod, m["n"], m["accuracy"], f"{m['ci95'][0]:.3f}-{m['ci95'][1]:.3f}"])
    sec.table(["model", "modality", "n", "accuracy", "95% CI"], rows)
    by_modality = {name: {mod: by_mod[mod]["accuracy"] for mod in by_mod} for name, by_mod in metrics.items()}
    errors = {name: {mod: tuple(by_mod[mod]["ci95"]) for mod in by_mod} for name, by_mod in metrics.items()}
    f1 = bar_chart(
        by_modality,
        figs / "accuracy_by_modality.png",
        "Accuracy by modality (95% CI)",
        chance=CHANCE,
        errors=errors,
    )
    series = {f"{final} (video)": (final, "video"), f"{final} (text only)": (final, "text")}
    if REFERENCE in metrics:
        series[f"{REFERENCE} (video)"] = (REFERENCE, "video")
    by_cat = {
        label: {c: v["accuracy"] for c, v in metrics[n][mod]["by_category"].items()}
        for label, (n, mod) in series.items()
    }
    cat_err = {
        label: {c: tuple(v["ci95"]) for c, v in metrics[n][mod]["by_category"].items()}
        for label, (n, mod) in series.items()
    }
    f2 = bar_chart(
        by_cat,
        figs / "accuracy_by_category.png",
        "Accuracy by category (95% CI)",
        chance=CHANCE,
        errors=cat_err,
    )
    sec.figures(
        [
            Figure(f1, "Accuracy per modality for each model"),
            Figure(f2, "Accuracy per category: the trained model with and without the video, and untrained"),
        ]
    )
    cats = sorted({c for by_mod in metrics.values() for c in by_mod["video"]["by_category"]})
    cat_rows = []
    for name, by_mod in metrics.items():
        for mod in EVAL_MODALITIES:
            bc = by_mod.get(mod, {}).get("by_category", {})
            cat_rows.append(
                [name, mod]
                + [
                    f"{bc[c]['accuracy']:.2f} ({bc[c]['ci95'][0]:.2f}-{bc[c]['ci95'][1]:.2f}, n={bc[c]['n']})"
                    if c in bc
                    else "-"
                    for c in cats
                ]
            )
    sec.table(["model", "modality", *cats], cat_rows, caption="Accuracy (95% CI, n) per category")

    sec = report.section("5. Curation (ApolloBench recipe): curated vs full")
    sec.text(
        "Questions that more than half of the trained checkpoints answer from the text alone or from the centre "
        "frame are dropped; the rest are ranked by how much the models disagree. The curated set should rank "
        "the models like the full set does (rank correlations below)."
    )
    s = curation.get("summary", {})
    if s:
        sec.table(["what", "value"], [[k, "-" if v is None else v] for k, v in s.items()])
    sec.table(
        ["model", "full", "curated"],
        [
            [m, curation["full_scores"].get(m, float("nan")), curation["curated_scores"].get(m, float("nan"))]
            for m in curation.get("models", [])
        ],
    )
    heat = sorted((cfg.out / "curate").glob("redundancy_*.png"))
    if heat:
        sec.figures([Figure(p, f"Redundancy heatmap: {p.stem.split('_', 1)[1]}", width=420) for p in heat])
    for note in curation.get("notes", []):
        sec.note(note)

    sec = report.section("Timings")
    sec.table(["step", "seconds (this run; 0 = done earlier)"], [[k, v] for k, v in timings.items()])
    return report.write(cfg.out / "report.html")


# -------------------------------------------------------------------------------------------- run


STATE_FILE = "demo_state.json"


class _Steps:
    """Steps remembered in OUT/demo_state.json with the settings they started with. A re-run skips a
    finished step whose outputs are still there and resumes an unfinished one (every step's job resumes
    by itself). Other settings than those recorded are an error: the outputs would mix two runs."""

    def __init__(self, out: Path, cb: DemoCallbacks):
        self.path = out / STATE_FILE
        self.cb = cb
        self.state: dict[str, Any] = {}
        if self.path.is_file():
            try:
                self.state = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                self.state = {}
        self.timings: dict[str, float] = {}

    def check(self, keys: dict[str, Any]) -> None:
        """Refuse other world / synth / training settings than an earlier run's; other evaluation or
        curation settings just redo those (cheap) steps."""
        for name, key in keys.items():
            rec = self.state.get(name)
            if rec is None or rec.get("key") == _plain(key):
                continue
            if name in REDO_ON_CHANGE:
                for later in REDO_ON_CHANGE[REDO_ON_CHANGE.index(name) :]:
                    shutil.rmtree(self.path.parent / later, ignore_errors=True)
                    self.state.pop(later, None)
                self._save()
                return
            raise DemoError(
                f"{self.path.parent} holds a demo run with other {name} settings; re-run it with the "
                "same options, choose another --out, or pass --overwrite to start it again"
            )

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.state, indent=2, default=_json_default) + "\n")

    def run(self, name: str, key: Any, outputs: list[Path], fn: Callable[[], Any]) -> Any:
        import time

        rec = self.state.get(name)
        if rec and rec.get("done") and all(p.exists() for p in outputs):
            self.cb.start(f"{name}: done earlier, skipped")
            self.timings[name] = 0.0
            return rec.get("value")
        self.state[name] = {"key": _plain(key), "done": False}
        self._save()
        t = time.perf_counter()
        value = fn()
        self.timings[name] = round(time.perf_counter() - t, 1)
        self.state[name] = {"key": _plain(key), "done": True, "value": value, "seconds": self.timings[name]}
        self._save()
        return value


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=_json_default))


REDO_ON_CHANGE = ["eval", "curate"]  # step names, also their output folders
OWN_OUTPUTS = ("world", "runs", "eval", "curate", "figures", "report.html", "summary.json", STATE_FILE)


def clear_outputs(out: Path) -> None:
    """Remove what an earlier demo wrote into ``out`` (only the demo's own files and folders)."""
    for name in OWN_OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def run_demo(cfg: DemoConfig, callbacks: DemoCallbacks | None = None) -> dict[str, Any]:
    """Run (or resume) the whole demo; returns a summary with the report's path and the key metrics."""
    cb = callbacks or DemoCallbacks()
    cfg.out = Path(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not os.access(cfg.out, os.W_OK):
        raise DemoError(f"output directory is not writable: {cfg.out}")
    recipe = load_recipe(cfg)  # fail before any work when the recipe is missing or malformed
    if cfg.overwrite:
        clear_outputs(cfg.out)
    steps = _Steps(cfg.out, cb)
    world = cfg.out / "world"
    settings = dataclasses.asdict(cfg)
    settings.pop("out")
    keys = {
        "world": {k: settings[k] for k in ("seed", "preset", "world_overrides")},
        "synth": {k: settings[k] for k in ("synth_size", "synth_font_size")},
        "train": {"recipe": recipe.to_dict(), "max_steps": cfg.max_steps, "baseline": cfg.baseline},
        "eval": {k: settings[k] for k in ("eval_method", "eval_batch_size", "bootstrap", "reference")},
        "curate": {"top_k": cfg.curate_top_k},
    }
    steps.check(keys)

    steps.run("world", keys["world"], [world / "bench_test.jsonl"], lambda: str(make_world(cfg, cb)))
    synth = steps.run(
        "synth", keys["synth"], [world / "synth" / "samples.jsonl"], lambda: make_synth(cfg, world, cb)
    )

    def train_all() -> dict[str, Any]:
        if cfg.reference:
            make_reference(cfg, recipe)
        return train_runs(cfg, world, cb)

    finals = [cfg.out / "runs" / MAIN_RUN / "final" / "config.json"]
    if cfg.baseline:
        finals.append(cfg.out / "runs" / BASELINE_RUN / "final" / "config.json")
    train = steps.run("train", keys["train"], finals, train_all)
    names = list(checkpoints(cfg))
    metrics = steps.run(
        "eval",
        keys["eval"],
        [cfg.out / "eval" / n / m / "metrics.json" for n in names for m in EVAL_MODALITIES],
        lambda: evaluate_all(cfg, world, cb),
    )
    curation = steps.run(
        "curate",
        keys["curate"],
        [cfg.out / "curate" / "curation.json"],
        lambda: curate_all(cfg, list(metrics), cb),
    )
    cb.start("report")
    comps = comparisons(cfg, metrics)
    timings = dict(steps.timings)
    report = write_report(cfg, world, metrics, curation, timings, comps)
    final = final_name(metrics)
    summary = {
        "report": str(report),
        "timings": timings,
        "synth": synth,
        "train": {k: {"final": v.get("final"), "seconds": v.get("seconds")} for k, v in train.items()},
        "method": cfg.eval_method,
        "final_model": final,
        "reference": REFERENCE if REFERENCE in metrics else None,
        "metrics": {
            name: {
                mod: {"accuracy": m["accuracy"], "ci95": m["ci95"], "n": m["n"]} for mod, m in by_mod.items()
            }
            for name, by_mod in metrics.items()
        },
        "comparisons": comps,
        "curation": curation.get("summary", {}),
        "reading": honest_reading(metrics, curation, comps),
        "chance": CHANCE,
    }
    atomic_write_text(cfg.out / "summary.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    return summary


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
