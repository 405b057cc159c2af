"""sparrow.jobs: ordered results for any worker count on every executor (in-process, local pool, Ray),
resume skips finished items and gives identical output, a failing item becomes an error result and
the job goes on; run_job owns state, overwrite, temp clean-up, errors.jsonl, summary.json, progress."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from sparrow.jobs import (
    Collector,
    ItemResult,
    JobError,
    JobOptions,
    JobReport,
    Stage,
    WorkItem,
    prepare_state,
    run_items,
    run_job,
)


def square(payload: dict) -> dict:
    """Finishes out of order (later items are faster) and records every call in a log directory."""
    n = payload["n"]
    time.sleep(0.002 * (20 - n % 20))
    if payload.get("log"):
        Path(payload["log"], f"{n}-{os.getpid()}-{time.monotonic_ns()}").touch()
    if n % 7 == 3:
        raise ValueError(f"item {n} is bad\nsecond line is dropped")
    if n == 11:
        raise KeyError("")  # an exception with an empty message still gets a reason
    return {"n": n, "square": n * n}


@dataclass
class Squares(Stage):
    """A stage over ``count`` numbers; ``setup`` leaves a mark per worker so tests can count setups."""

    count: int = 0
    log: str | None = None
    setups: str | None = None
    name = "squares"
    unit = "squares"

    def fingerprint(self) -> dict:
        return {"count": self.count}

    def items(self):
        for n in range(self.count):
            yield WorkItem(key=f"k{n}", payload={"n": n, "log": self.log}, id=f"n{n}", source="numbers")

    def total(self) -> int:
        return self.count

    def setup(self) -> None:
        self.ready = True
        if self.setups:
            Path(self.setups, f"{os.getpid()}-{time.monotonic_ns()}").touch()

    def process(self, payload: dict) -> dict:
        assert self.ready, "process() before setup()"
        return square(payload)

    def collector(self, out: Path) -> Collector:
        return SquareFile(out / "squares.txt")


class SquareFile(Collector):
    def __init__(self, path: Path):
        self.path, self.lines = path, []

    def add(self, item: WorkItem, result: ItemResult) -> int:
        self.lines.append(f"{item.key} {result.value['square']}")
        return 1

    def close(self, report: JobReport):
        self.path.write_text("\n".join(self.lines) + "\n")
        return _Report(report)


@dataclass
class _Report:
    report: JobReport

    def to_dict(self) -> dict:
        return {"report": asdict(self.report)}


class Crashy(Squares):
    """Item 5 kills its worker process outright (as a segfault or the OOM killer would)."""

    def process(self, payload: dict) -> dict:
        time.sleep(0.01)
        if payload["n"] == 5:
            os._exit(3)
        return {"n": payload["n"]}


def _items(count: int, log: Path | None = None) -> list[WorkItem]:
    return list(Squares(count, str(log) if log else None).items())


def _plain(results) -> list[tuple]:
    return [(r.key, r.ok, json.dumps(r.value, sort_keys=True), r.error) for r in results]


def test_ordered_and_identical_for_one_and_two_workers():
    one = list(run_items(Squares(), _items(40), workers=1))
    two = list(run_items(Squares(), _items(40), workers=2, max_in_flight_per_worker=3))
    assert [r.key for r in one] == [f"k{n}" for n in range(40)]
    assert _plain(one) == _plain(two)
    bad = [r for r in one if not r.ok]
    assert [r.key for r in bad] == ["k3", "k10", "k11", "k17", "k24", "k31", "k38"]
    assert bad[0].error == "item 3 is bad" and bad[0].value is None
    assert bad[2].error.startswith("KeyError")
    assert all(r.value == {"n": int(r.key[1:]), "square": int(r.key[1:]) ** 2} for r in one if r.ok)
    report = JobReport(job="squares", workers=1, executor="local")
    for r in one:
        report.count(r)
    assert (report.items, report.ok, report.failed, report.resumed) == (40, 33, 7, 0)


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_skips_done_items_and_gives_identical_output(tmp_path, workers):
    fresh = list(run_items(Squares(), _items(30), workers=workers, state_dir=tmp_path / "fresh"))
    state = tmp_path / "state"
    log = tmp_path / "log"
    log.mkdir()
    # an interrupted run: the stream stops after 12 items (as if the process were killed)
    first = []
    for r in run_items(Squares(), _items(30, log), workers=workers, state_dir=state):
        first.append(r)
        if len(first) == 12:
            break
    done_first = {p.name.split("-")[0] for p in log.iterdir()}
    assert {str(n) for n in range(12)} <= done_first
    for p in log.iterdir():
        p.unlink()
    resumed = list(run_items(Squares(), _items(30, log), workers=workers, state_dir=state))
    rerun = {p.name.split("-")[0] for p in log.iterdir()}
    assert not rerun & {str(n) for n in range(12)}  # finished items (errors included) are not redone
    assert all(r.skipped for r in resumed[:12])
    assert _plain(resumed) == _plain(fresh)


def test_damaged_state_is_redone(tmp_path):
    items = _items(5)
    list(run_items(Squares(), items, state_dir=tmp_path))
    files = sorted(p for p in tmp_path.glob("*/*.json"))
    assert len(files) == 5
    files[0].write_text("{broken")
    again = list(run_items(Squares(), items, state_dir=tmp_path))
    assert sum(not r.skipped for r in again) == 1
    assert _plain(again) == _plain(list(run_items(Squares(), items)))


def test_prepare_state_guards_settings(tmp_path):
    state = prepare_state(tmp_path / "s", {"a": 1})
    (state / "marker").write_text("x")
    assert prepare_state(tmp_path / "s", {"a": 1}) == state and (state / "marker").exists()
    with pytest.raises(JobError, match="different settings"):
        prepare_state(tmp_path / "s", {"a": 2})
    prepare_state(tmp_path / "s", {"a": 2}, overwrite=True)
    assert not (state / "marker").exists()
    assert json.loads((state / "fingerprint.json").read_text()) == {"a": 2}


def test_unknown_executor():
    with pytest.raises(JobError, match="executor"):
        list(run_items(Squares(), _items(1), executor="slurm"))


def test_dead_worker_fails_only_its_item(tmp_path):
    items = _items(12)
    results = list(run_items(Crashy(), items, workers=2, state_dir=tmp_path))
    assert [r.key for r in results] == [f"k{n}" for n in range(12)]
    assert [r.key for r in results if not r.ok] == ["k5"]
    assert "worker process died" in results[5].error
    # the failure is saved like any other result: a resumed run agrees without re-running it
    again = list(run_items(Crashy(), items, workers=2, state_dir=tmp_path))
    assert all(r.skipped for r in again) and _plain(again) == _plain(results)


@pytest.mark.parametrize("workers", [1, 2])
def test_setup_runs_once_per_worker(tmp_path, workers):
    setups = tmp_path / "setups"
    setups.mkdir()
    stage = Squares(20, setups=str(setups))
    assert len(list(run_items(stage, stage.items(), workers=workers))) == 20
    assert len({p.name.split("-")[0] for p in setups.iterdir()}) == workers  # one process each
    assert len(list(setups.iterdir())) == workers  # and once in each


def test_run_job_owns_state_errors_summary_and_progress(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".squares.txt.abc.tmp").write_text("left by a killed run")
    events = []
    summary = run_job(Squares(12), out, JobOptions(workers=1, on_progress=events.append))
    assert not (out / ".squares.txt.abc.tmp").exists()
    assert (out / "squares.txt").read_text().splitlines()[0] == "k0 0"
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert [list(e) for e in errors] == [["id", "line", "source", "reason"]] * 3
    assert [(e["id"], e["source"]) for e in errors] == [
        ("n3", "numbers"),
        ("n10", "numbers"),
        ("n11", "numbers"),
    ]
    assert errors[0]["reason"] == "item 3 is bad" and errors[0]["line"] is None
    written = json.loads((out / "summary.json").read_text())
    assert written == summary.to_dict() and written["report"]["failed"] == 3
    assert [e.done for e in events] == list(range(1, 13)) and {e.total for e in events} == {12}
    assert events[-1].units == 9 and events[-1].unit == "squares" and events[-1].job == "squares"
    assert [e.ok for e in events].count(False) == 3

    again = run_job(Squares(12), out, JobOptions(workers=2))
    assert again.report.resumed == 12 and (out / "squares.txt").read_text().count("\n") == 9
    with pytest.raises(JobError, match="different settings"):
        run_job(Squares(5), out)
    run_job(Squares(3), out, JobOptions(overwrite=True))
    assert not (out / "errors.jsonl").exists()  # no failure this time: the stale file is gone
    assert json.loads((out / "summary.json").read_text())["report"]["resumed"] == 0


def test_progress_callback_can_stop_the_job_and_outputs_stay(tmp_path):
    out = tmp_path / "out"

    def stop(event):
        if event.done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(Squares(8), out, JobOptions(on_progress=stop))
    assert not (out / "squares.txt").exists() and not (out / "summary.json").exists()
    summary = run_job(Squares(8), out)
    assert summary.report.resumed == 4


# ------------------------------------------------------------------------------------------- Ray


def test_missing_ray_keeps_brackets_in_the_message(tmp_path, monkeypatch, capsys):
    """The install hint names the extra, ``sparrow-vllm[ray]``; rich must not eat it as markup."""
    from sparrow.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "context": "Some text.", "question": "q", "answer": "a"}) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["synth", str(inp), "--out", str(tmp_path / "o"), "--executor", "ray"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "pip install 'sparrow-vllm[ray]'" in err


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".state" not in p.parts and p.name != "summary.json"
    }


def _cli(args: list[str]) -> None:
    from sparrow.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0


def test_ray_executor_writes_what_the_local_pool_writes(ray_runtime, tmp_path):
    from media import write_video

    rows = [
        {"id": f"r{i}", "context": f"Record {i}. " + "word " * (40 + 30 * i), "question": "q?", "answer": "a"}
        for i in range(3)
    ] + [{"id": "bad", "context": "", "question": "q", "answer": "a"}]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    synth = ["synth", str(inp), "--width", "160", "--height", "120", "--font-size", "12", "-j", "2"]
    _cli([*synth, "--out", str(tmp_path / "s_pool")])
    _cli([*synth, "--out", str(tmp_path / "s_ray"), "--executor", "ray"])
    pool, ray_out = _tree(tmp_path / "s_pool"), _tree(tmp_path / "s_ray")
    assert "samples.jsonl" in pool and "errors.jsonl" in pool and len(pool) > 4
    assert pool == ray_out

    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "a.mp4", 20, fps=10, width=48, height=32)
    write_video(videos / "b.mp4", 12, fps=8, width=48, height=32)
    frames = ["frames", str(videos), "--fps", "4", "-j", "2"]
    _cli([*frames, "--out", str(tmp_path / "f_pool")])
    _cli([*frames, "--out", str(tmp_path / "f_ray"), "--executor", "ray"])
    pool, ray_out = _tree(tmp_path / "f_pool"), _tree(tmp_path / "f_ray")
    assert "manifest.jsonl" in pool and len(pool) > 4
    assert pool == ray_out
