"""``flywheel()``: round 0 refines the ASR transcripts with an LLM; each later round trains a captioner
on the transcript lines paired with the previous round's captions (then on the human pairs), lets it
caption every line again (reading the line, seeing its clip), and scores the result. Every round is resumable and is skipped once its ``round.json`` is written.

OUT/
  flywheel.json     the settings the run was started with (a resume must use the same)
  data/             videos (links), asr.json, reference.json, human.jsonl, human-pairs.jsonl, examples.jsonl,
                    round-K.jsonl (each round's caption records), captioner-K.jsonl (round K's training pairs)
  asr/trinity.json  the raw transcripts scored like a round
  round-K/          the round's job outputs (caption.json, trinity.json, summary.json, ...), captioner/
  rounds.json       one row per round; report.html + figures: the per-round trinity table and plots
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from sparrow.caption_metrics import TrinityConfig, trinity
from sparrow.captions import Transcript, load_captions, read_entries
from sparrow.flywheel.annotate import AnnotateStage
from sparrow.flywheel.captioner import captioner_recipe, train_captioner
from sparrow.flywheel.config import FlywheelConfig, FlywheelError
from sparrow.flywheel.data import FlywheelData, prepare_data
from sparrow.flywheel.narrated import narrated_records
from sparrow.flywheel.pretrained import check_captioner_init
from sparrow.flywheel.report import write_report
from sparrow.flywheel.rounds import ROUND_FILE, RoundResult, read_trinity, round_result
from sparrow.io import atomic_write_text
from sparrow.jobs import JobOptions, run_job
from sparrow.jobs.hooks import StepHooks
from sparrow.refine.caption_stage import CaptionJob
from sparrow.run_guard import claim

SETTINGS_FILE = "flywheel.json"


def claim_settings(path: Path, settings: dict[str, Any], refusal: str) -> None:
    """Write a run's settings file; one that holds other settings raises ``FlywheelError(refusal)`` (a
    resume must use the same settings). Shared with the loss study."""
    if claim(path, settings):
        raise FlywheelError(refusal)


def _claim(out: Path, world: Path, cfg: FlywheelConfig, overwrite: bool) -> None:
    """Write the settings file, refusing an OUT that holds a run with other settings."""
    if overwrite and out.exists():
        shutil.rmtree(out)
    claim_settings(
        out / SETTINGS_FILE,
        {"world": str(world.resolve()), **dataclasses.asdict(cfg)},
        f"{out} holds a flywheel run with other settings; pass --overwrite or another --out",
    )


def _job_progress(hooks: StepHooks, name: str) -> Any:
    return lambda event: hooks.advance(name, event.done, event.total)


def _score_asr(data: FlywheelData, out: Path, trinity_cfg: TrinityConfig, cfg: FlywheelConfig) -> RoundResult:
    path = out / "asr" / "trinity.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        reference = load_captions(data.reference)
        trinity(load_captions(data.asr), reference, trinity_cfg).write(path)
    return round_result("asr", "ASR transcripts", read_trinity(path), {}, cfg.resamples, cfg.seed)


def _refine_round(
    data: FlywheelData, rdir: Path, cfg: FlywheelConfig, tcfg: TrinityConfig, hooks: StepHooks
) -> Any:
    from sparrow.refine.run import refine

    rcfg = cfg.refine
    if cfg.few_shot and not rcfg.examples:
        rcfg = dataclasses.replace(rcfg, examples=str(data.examples))
    hooks.start("round 0: refining the transcripts with the LLM")
    return refine(
        data.asr, data.videos, rdir, rcfg, records=data.records("round-0"), reference=data.reference,
        trinity=tcfg, workers=1, on_progress=_job_progress(hooks, "round 0: refine"),
    )  # fmt: skip


def captioner_job(
    data: FlywheelData,
    rdir: Path,
    cfg: FlywheelConfig,
    tcfg: TrinityConfig,
    hooks: StepHooks,
    *,
    train_on: tuple[str, Path],
    captions: Path,
    records: Path,
    seed: int,
    label: str,
    human: Path | None = None,
    narrated: bool = False,
) -> Any:
    """Train ``cfg``'s captioner (seeded ``seed``) on the caption records ``train_on`` = (what they are,
    their file), then on the human examples (``human``, default their caption records), into
    RDIR/captioner; let it re-caption every line of ``captions`` into RDIR (training records to
    ``records``; ``narrated``: it reads each line as well as seeing its clip). Returns the job's summary.
    Shared by the flywheel's rounds and the loss study (``sparrow.flywheel.loss_study``)."""
    hooks.start(f"{label}: training the captioner on {train_on[0]}")
    recipe = captioner_recipe(cfg, train_on[1], human or data.human_records, seed=seed)
    ckpt = train_captioner(recipe, rdir / "captioner", data.root, cfg.steps, hooks.train)
    hooks.start(f"{label}: re-annotating with the captioner")
    job = CaptionJob(captions, data.videos, rdir, records, data.reference, tcfg)
    stage = AnnotateStage(job, ckpt, cfg.max_new_tokens, narrated=narrated)
    return run_job(stage, rdir, JobOptions(workers=1, on_progress=_job_progress(hooks, f"{label}: annotate")))


def _captioner_round(
    k: int, data: FlywheelData, rdir: Path, cfg: FlywheelConfig, tcfg: TrinityConfig, hooks: StepHooks
) -> Any:
    """Train a captioner on the transcript lines paired with round k-1's captions (and on the human
    pairs), then let it caption every transcript line again, reading the line and seeing its clip."""
    transcripts = {t.video_id: t for t in read_entries(data.asr) if isinstance(t, Transcript)}
    previous = load_captions(rdir.parent / f"round-{k - 1}" / "caption.json")
    pairs = data.records(f"captioner-{k}")
    narrated_records(transcripts, previous, data.videos, pairs)
    return captioner_job(
        data, rdir, cfg, tcfg, hooks, train_on=(f"round {k - 1}'s captions", pairs), human=data.human_pairs,
        captions=data.asr, records=data.records(f"round-{k}"), seed=cfg.seed + k, label=f"round {k}",
        narrated=True,
    )  # fmt: skip


def flywheel(
    world: str | os.PathLike,
    out: str | os.PathLike,
    cfg: FlywheelConfig | None = None,
    *,
    overwrite: bool = False,
    hooks: StepHooks | None = None,
) -> list[RoundResult]:
    """Run (or resume) the flywheel on a ``sparrow world`` folder; returns the raw transcripts' row and
    one row per round, also written to ``OUT/rounds.json`` and ``OUT/report.html``."""
    cfg = cfg or FlywheelConfig()
    cfg.validate()
    world, out, hooks = Path(world), Path(out), hooks or StepHooks()
    if not world.is_dir():
        raise FlywheelError(f"world folder not found: {world}")
    for note in check_captioner_init(cfg.captioner_init, world) if cfg.captioner_init else []:
        hooks.warn(note)  # it raises when the checkpoint was trained on this world
    _claim(out, world, cfg, overwrite)
    hooks.start("preparing the data: videos, the human examples, the transcripts to refine")
    data = prepare_data(world, out, cfg)
    tcfg = TrinityConfig(vendi=cfg.vendi, seed=cfg.seed)
    rows = {"asr": _score_asr(data, out, tcfg, cfg)}
    for k in range(cfg.rounds + 1):
        name, rdir = f"round-{k}", out / f"round-{k}"
        done = rdir / ROUND_FILE
        if done.is_file():
            rows[name] = RoundResult.from_dict(json.loads(done.read_text(encoding="utf-8")))
            continue
        t0 = time.perf_counter()
        if k == 0:
            summary, source = _refine_round(data, rdir, cfg, tcfg, hooks), "LLM refinement"
        else:
            summary, source = _captioner_round(k, data, rdir, cfg, tcfg, hooks), f"captioner (round {k - 1})"
        if not summary.ok:
            raise FlywheelError(f"{name}: no video came through; see {rdir / 'errors.jsonl'}")
        row = round_result(
            name, source, read_trinity(rdir / "trinity.json"), rows, cfg.resamples, cfg.seed,
            videos=summary.videos, failed=summary.failed, seconds=round(time.perf_counter() - t0, 1),
        )  # fmt: skip
        atomic_write_text(done, json.dumps(row.to_dict(), indent=2) + "\n")
        rows[name] = row
        write_report(out, list(rows.values()), cfg)
    results = list(rows.values())
    atomic_write_text(out / "rounds.json", json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    write_report(out, results, cfg)
    return results
