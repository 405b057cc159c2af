"""The loss study (``sparrow flywheel-losses``): is AdaTaiLr better than cross-entropy for a captioner
pre-trained on noisy ASR transcripts? Each loss trains the same captioner recipe on the same records (the
raw transcripts of the flywheel's scored videos, then the human examples) for the same steps, once per
seed; only the first stage's loss differs. Each captioner re-captions the transcripts' segments and is
scored against the ground truth. Every run is resumable and is skipped once its ``result.json`` exists.

OUT/
  data/                      as the flywheel's (the same split); losses-LOSS-seedS.jsonl: the runs' records
  losses/settings.json       the settings the study was started with (a resume must use the same)
  losses/LOSS-seedS/         a run: captioner/, caption.json, trinity.json, result.json
  losses/study.json          per run, per loss, and the paired differences against the first loss
  losses/report.html         the tables, the figure (figures/cider.png) and the plain reading

The intervals resample videos: they say how sure the numbers are for these videos given these trained
captioners, not how much another seed would move them (the seeds' spread is shown, not modelled).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.caption_metrics import TrinityConfig, paired_bootstrap
from sparrow.flywheel.config import LOSSES, FlywheelConfig, FlywheelError
from sparrow.flywheel.data import FlywheelData, prepare_data
from sparrow.flywheel.pretrained import check_captioner_init
from sparrow.flywheel.rounds import RoundResult, read_trinity, round_result
from sparrow.flywheel.run import SETTINGS_FILE, captioner_job, claim_settings
from sparrow.io import atomic_write_text
from sparrow.jobs.hooks import StepHooks
from sparrow.plots import pyplot
from sparrow.report.figures import save_figure
from sparrow.report.html import Figure, Report

STUDY_DIR = "losses"
DONE_FILE = "result.json"  # written last: a run with this file is done and is not run again
PER_RUN = ("loss", "rounds", "refine")  # FlywheelConfig fields the study's settings leave out
DATA_FIELDS = ("videos", "human_share", "seed", "few_shot")  # what OUT/data is prepared from


def mean_interval(
    scores: Mapping[str, float], resamples: int, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """The mean of per-video scores and its bootstrap percentile interval (videos resampled with
    replacement, seeded): the paired bootstrap against a score of zero, so both intervals come from one
    resampling scheme."""
    iv = paired_bootstrap(scores, dict.fromkeys(scores, 0.0), resamples, level, seed)
    return {"mean": iv.difference, "low": iv.low, "high": iv.high, "level": level, "videos": iv.videos}


@dataclass
class LossRun:
    """One trained captioner: its loss and seed, its trinity numbers as a flywheel row (``scores``, named
    LOSS-seedS) and ``cider_d``, the bootstrap interval of its mean per-video CIDEr-D."""

    loss: str
    seed: int
    scores: RoundResult
    cider_d: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return run_name(self.loss, self.seed)

    @property
    def quality(self) -> dict[str, Any]:
        return self.scores.quality

    @property
    def per_video_cider(self) -> dict[str, float]:
        return self.scores.per_video_cider

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossRun:
        return cls(d["loss"], d["seed"], RoundResult.from_dict(d["scores"]), d["cider_d"])


@dataclass
class LossStudy:
    """``runs`` in (loss, seed) order; ``losses``: per loss, the CIDEr-D mean / min / max over seeds;
    ``differences``: the paired bootstrap of CIDEr-D(loss) - CIDEr-D(``baseline``) per seed (``seed`` an
    int) and pooled over the seeds (``seed`` "pooled": per-video CIDEr-D averaged over seeds first)."""

    baseline: str
    seeds: list[int]
    runs: list[LossRun]
    losses: dict[str, dict[str, Any]]
    differences: list[dict[str, Any]]

    def run(self, loss: str, seed: int) -> LossRun:
        return next(r for r in self.runs if r.loss == loss and r.seed == seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_name(loss: str, seed: int) -> str:
    return f"{loss}-seed{seed}"


def _check(losses: Sequence[str], seeds: Sequence[int]) -> None:
    if not losses:
        raise FlywheelError(f"no losses to compare: give at least one of {', '.join(LOSSES)}")
    for loss in losses:
        if loss not in LOSSES:
            raise FlywheelError(f"unknown loss {loss!r}: choose from {', '.join(LOSSES)}")
    if len(set(losses)) != len(losses):
        raise FlywheelError(f"each loss may be given once, got {', '.join(losses)}")
    if not seeds:
        raise FlywheelError("no seeds: give at least one training seed, e.g. 0,1,2")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise FlywheelError(f"seeds must be integers >= 0, got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise FlywheelError(f"each seed may be given once, got {list(seeds)}")


def _share_data(out: Path, settings: dict[str, Any]) -> None:
    """OUT/data may be a flywheel run's: preparing it from other settings would change that run's data."""
    path = out / SETTINGS_FILE
    if not path.is_file():
        return
    flywheel = json.loads(path.read_text(encoding="utf-8"))
    if any(flywheel.get(k) != settings[k] for k in ("world", *DATA_FIELDS)):
        raise FlywheelError(
            f"{out} holds a flywheel run prepared from another world or other {', '.join(DATA_FIELDS)}; "
            "give the study the same settings or another --out"
        )


def _train_and_score(
    data: FlywheelData, root: Path, cfg: FlywheelConfig, loss: str, seed: int, hooks: StepHooks
) -> LossRun:
    """One run: the captioner trained with ``loss`` and ``seed`` on the raw transcripts, re-captioning
    the transcripts' segments, scored; written to its ``result.json`` (a finished run is read back)."""
    name, rdir = run_name(loss, seed), root / run_name(loss, seed)
    done = rdir / DONE_FILE
    if done.is_file():
        return LossRun.from_dict(json.loads(done.read_text(encoding="utf-8")))
    t0 = time.perf_counter()
    summary = captioner_job(
        data, rdir, dataclasses.replace(cfg, loss=loss), TrinityConfig(vendi=cfg.vendi, seed=cfg.seed), hooks,
        train_on=("the ASR transcripts", data.records("asr")), captions=data.asr,
        records=data.records(f"losses-{name}"), seed=seed, label=f"{loss}, seed {seed}",
    )  # fmt: skip
    if not summary.ok:
        raise FlywheelError(f"{name}: no video came through; see {rdir / 'errors.jsonl'}")
    scores = round_result(
        name, f"captioner ({loss}, seed {seed})", read_trinity(rdir / "trinity.json"), {}, cfg.resamples,
        cfg.seed, videos=summary.videos, failed=summary.failed, seconds=round(time.perf_counter() - t0, 1),
    )  # fmt: skip
    if not scores.per_video_cider:
        raise FlywheelError(f"{name}: {rdir / 'trinity.json'} has no per-video CIDEr-D to compare")
    run = LossRun(loss, seed, scores, mean_interval(scores.per_video_cider, cfg.resamples, seed=cfg.seed))
    atomic_write_text(done, json.dumps(run.to_dict(), indent=2) + "\n")
    return run


def _pooled(runs: list[LossRun]) -> dict[str, float]:
    """Per-video CIDEr-D averaged over a loss's seeds."""
    videos = runs[0].per_video_cider
    return {v: sum(r.per_video_cider[v] for r in runs) / len(runs) for v in videos}


def summarize(
    runs: list[LossRun], losses: Sequence[str], seeds: Sequence[int], cfg: FlywheelConfig
) -> LossStudy:
    """The per-loss summary and the paired differences of every loss against the first one."""
    by = {(r.loss, r.seed): r for r in runs}
    per_loss = {}
    for loss in losses:
        ciders = [by[loss, s].quality.get("cider_d", 0.0) for s in seeds]
        per_loss[loss] = {
            "seeds": len(ciders),
            "cider_d": sum(ciders) / len(ciders),
            "min": min(ciders),
            "max": max(ciders),
            "bleu_4": sum(by[loss, s].quality.get("bleu_4", 0.0) for s in seeds) / len(seeds),
            "rouge_l": sum(by[loss, s].quality.get("rouge_l", 0.0) for s in seeds) / len(seeds),
        }
    base, differences = losses[0], []
    for loss in losses[1:]:
        pairs = [(s, by[loss, s].per_video_cider, by[base, s].per_video_cider) for s in seeds]
        pooled = _pooled([by[loss, s] for s in seeds]), _pooled([by[base, s] for s in seeds])
        for seed, a, b in [*pairs, ("pooled", *pooled)]:
            iv = paired_bootstrap(a, b, cfg.resamples, seed=cfg.seed)
            differences.append({"loss": loss, "baseline": base, "seed": seed, **iv.to_dict()})
    return LossStudy(base, list(seeds), runs, per_loss, differences)


def loss_study(
    world: str | os.PathLike,
    out: str | os.PathLike,
    cfg: FlywheelConfig | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    losses: Sequence[str] = ("ce", "adatailr"),
    *,
    hooks: StepHooks | None = None,
) -> LossStudy:
    """Train and score one captioner per loss and seed on the world's raw transcripts (the flywheel's
    data, same split); compare the losses. Writes OUT/losses/study.json and OUT/losses/report.html."""
    cfg = cfg or FlywheelConfig()
    cfg.validate()
    losses, seeds = tuple(losses), tuple(seeds)
    _check(losses, seeds)
    world, root, hooks = Path(world), Path(out) / STUDY_DIR, hooks or StepHooks()
    if not world.is_dir():
        raise FlywheelError(f"world folder not found: {world}")
    for note in check_captioner_init(cfg.captioner_init, world) if cfg.captioner_init else []:
        hooks.warn(note)  # it raises when the checkpoint was trained on this world
    settings = {"world": str(world.resolve())}
    settings.update((k, v) for k, v in asdict(cfg).items() if k not in PER_RUN)
    _share_data(Path(out), settings)
    claim_settings(
        root / "settings.json", settings, f"{root} holds a loss study with other settings; use another --out"
    )
    hooks.start("preparing the data: videos, the human examples, the transcripts")
    data = prepare_data(world, out, cfg)
    runs = [_train_and_score(data, root, cfg, loss, seed, hooks) for loss in losses for seed in seeds]
    study = summarize(runs, losses, seeds, cfg)
    atomic_write_text(root / "study.json", json.dumps(study.to_dict(), indent=2) + "\n")
    write_study_report(root, study, cfg)
    return study


# ---- the report page ---------------------------------------------------------------------------------

RUN_COLUMNS = [
    "run", "loss", "seed", "videos", "failed", "captions", "distinct-2", "BLEU-4", "ROUGE-L", "CIDEr-D",
    "CIDEr-D [95% CI]", "slots (c/s/w/a)", "seconds",
]  # fmt: skip


def _interval(low: float, high: float) -> str:
    return f"[{low:.3f}, {high:.3f}]"


def run_row(run: LossRun) -> list[Any]:
    r = run.scores
    slots = "/".join(f"{r.slots[k]:.2f}" for k in ("colour", "shape", "word", "action") if k in r.slots)
    return [
        r.name, run.loss, run.seed, r.videos, r.failed, r.quantity.get("captions", 0),
        r.diversity.get("distinct_2", 0.0), r.quality.get("bleu_4", 0.0), r.quality.get("rouge_l", 0.0),
        r.quality.get("cider_d", 0.0), _interval(run.cider_d["low"], run.cider_d["high"]), slots or "-",
        r.seconds,
    ]  # fmt: skip


def difference_row(d: dict[str, Any]) -> list[Any]:
    return [f"{d['loss']} - {d['baseline']}", d["seed"], d["videos"], d["difference"],
            _interval(d["low"], d["high"]), "yes" if d["excludes_zero"] else "no"]  # fmt: skip


def reading(study: LossStudy) -> list[str]:
    """What the intervals say, and no more: a difference is claimed only where its interval excludes 0."""
    out = []
    for loss, s in study.losses.items():
        out.append(
            f"{loss}: CIDEr-D {s['cider_d']:.3f} on average over {s['seeds']} seed(s), "
            f"from {s['min']:.3f} to {s['max']:.3f}."
        )
    for d in study.differences:
        if d["seed"] != "pooled":
            continue
        a, b = d["loss"], d["baseline"]
        per_seed = [x for x in study.differences if x["loss"] == a and x["seed"] != "pooled"]
        higher = sum(x["low"] > 0 for x in per_seed)
        lower = sum(x["high"] < 0 for x in per_seed)
        span = f"{d['difference']:+.3f} {_interval(d['low'], d['high'])}, {d['videos']} videos"
        if d["low"] > 0:
            verdict = f"Pooled over the seeds, {a} scores higher CIDEr-D than {b} ({span})."
        elif d["high"] < 0:
            verdict = f"Pooled over the seeds, {a} scores lower CIDEr-D than {b} ({span})."
        else:
            verdict = f"Pooled over the seeds, {a} and {b} cannot be told apart on CIDEr-D ({span})."
        out.append(
            f"{verdict} Seed by seed, {a} is higher in {higher}, lower in {lower} and not told apart in "
            f"{len(per_seed) - higher - lower} of {len(per_seed)}."
        )
    out.append(
        "The intervals resample the scored videos, not training runs: they do not cover what another "
        "seed would give, so read the seeds' spread next to them."
    )
    return out


def plot_study(study: LossStudy, path: Path) -> Path:
    """CIDEr-D of every run with its 95 % interval, grouped by loss; a dashed line marks each loss's mean."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 + 1.6 * len(study.losses)), 3.6), dpi=100)
    n = len(study.seeds)
    for i, loss in enumerate(study.losses):
        runs = [study.run(loss, s) for s in study.seeds]
        x = [i + (j - (n - 1) / 2) * 0.6 / max(n, 1) for j in range(n)]
        mid = [r.cider_d["mean"] for r in runs]
        err = [[m - r.cider_d["low"] for m, r in zip(mid, runs, strict=True)],
               [r.cider_d["high"] - m for m, r in zip(mid, runs, strict=True)]]  # fmt: skip
        ax.errorbar(x, mid, yerr=err, fmt="o", capsize=4, label=loss)
        ax.hlines(study.losses[loss]["cider_d"], i - 0.4, i + 0.4, colors="grey", lw=1, ls="--")
        for xi, s, r in zip(x, study.seeds, runs, strict=True):
            ax.annotate(f"s{s}", (xi, r.cider_d["high"]), xytext=(0, 3), textcoords="offset points",
                        ha="center", fontsize=7)  # fmt: skip
    ax.set_xticks(range(len(study.losses)), list(study.losses))
    ax.set_ylabel("CIDEr-D (mean over videos)")
    ax.set_title("CIDEr-D per run (95 % CI)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def write_study_report(root: Path, study: LossStudy, cfg: FlywheelConfig) -> Path:
    budget = "the recipe's" if cfg.steps is None else f"at most {cfg.steps} a stage"
    report = Report(
        "Sparrow flywheel: loss study",
        f"The captioner recipe trained on the raw (noisy) ASR transcripts with each loss "
        f"({', '.join(study.losses)}), seeds {', '.join(map(str, study.seeds))}, the same steps "
        f"({budget}); scored against the world's ground truth on "
        f"{len(study.runs[0].per_video_cider)} videos never used as human examples.",
    )
    sec = report.section("Runs")
    sec.table(RUN_COLUMNS, [run_row(r) for r in study.runs], caption="slots: colour / shape / word / action")
    sec = report.section("Per loss")
    rows = [[k, v["seeds"], v["cider_d"], v["min"], v["max"], v["bleu_4"], v["rouge_l"]]
            for k, v in study.losses.items()]  # fmt: skip
    sec.table(["loss", "seeds", "CIDEr-D mean", "min", "max", "BLEU-4 mean", "ROUGE-L mean"], rows)
    if study.differences:
        sec = report.section("Paired differences of CIDEr-D")
        columns = ["difference", "seed", "videos", "mean", "95% CI", "excludes 0"]
        sec.table(columns, [difference_row(d) for d in study.differences])
    sec = report.section("Reading")
    for sentence in reading(study):
        sec.note(sentence)
    sec.figures(
        [
            Figure(
                plot_study(study, root / "figures" / "cider.png"),
                "CIDEr-D per run and seed, by loss; dashed: the mean over the seeds",
            )
        ]
    )
    return report.write(root / "report.html")
