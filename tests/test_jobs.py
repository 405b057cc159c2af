"""sparrow.jobs.run_items: ordered results for any worker count, resume skips finished items and gives
identical output, a failing item becomes an error result and the job goes on."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from sparrow.jobs import JobError, JobSummary, WorkItem, prepare_state, run_items


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


def _items(count: int, log: Path | None = None) -> list[WorkItem]:
    return [WorkItem(key=f"k{n}", payload={"n": n, "log": str(log) if log else None}) for n in range(count)]


def _plain(results) -> list[tuple]:
    return [(r.key, r.ok, json.dumps(r.value, sort_keys=True), r.error) for r in results]


def test_ordered_and_identical_for_one_and_two_workers():
    one = list(run_items(square, _items(40), workers=1))
    two = list(run_items(square, _items(40), workers=2, max_in_flight_per_worker=3))
    assert [r.key for r in one] == [f"k{n}" for n in range(40)]
    assert _plain(one) == _plain(two)
    bad = [r for r in one if not r.ok]
    assert [r.key for r in bad] == ["k3", "k10", "k11", "k17", "k24", "k31", "k38"]
    assert bad[0].error == "item 3 is bad" and bad[0].value is None
    assert bad[2].error.startswith("KeyError")
    assert all(r.value == {"n": int(r.key[1:]), "square": int(r.key[1:]) ** 2} for r in one if r.ok)
    summary = JobSummary()
    for r in one:
        summary.add(r)
    assert (summary.total, summary.ok, summary.failed, summary.skipped) == (40, 33, 7, 0)


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_skips_done_items_and_gives_identical_output(tmp_path, workers):
    fresh = list(run_items(square, _items(30), workers=workers, state_dir=tmp_path / "fresh"))
    state = tmp_path / "state"
    log = tmp_path / "log"
    log.mkdir()
    # an interrupted run: the stream stops after 12 items (as if the process were killed)
    first = []
    for r in run_items(square, _items(30, log), workers=workers, state_dir=state):
        first.append(r)
        if len(first) == 12:
            break
    done_first = {p.name.split("-")[0] for p in log.iterdir()}
    assert {str(n) for n in range(12)} <= done_first
    for p in log.iterdir():
        p.unlink()
    resumed = list(run_items(square, _items(30, log), workers=workers, state_dir=state))
    rerun = {p.name.split("-")[0] for p in log.iterdir()}
    assert not rerun & {str(n) for n in range(12)}  # finished items (errors included) are not redone
    assert all(r.skipped for r in resumed[:12])
    assert _plain(resumed) == _plain(fresh)


def test_damaged_state_is_redone(tmp_path):
    items = _items(5)
    list(run_items(square, items, state_dir=tmp_path))
    files = sorted(p for p in tmp_path.glob("*/*.json"))
    assert len(files) == 5
    files[0].write_text("{broken")
    again = list(run_items(square, items, state_dir=tmp_path))
    assert sum(not r.skipped for r in again) == 1
    assert _plain(again) == _plain(list(run_items(square, items)))


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
        list(run_items(square, _items(1), executor="slurm"))


def crashy(payload: dict) -> dict:
    """Item 5 kills its worker process outright (as a segfault or the OOM killer would)."""
    time.sleep(0.01)
    if payload["n"] == 5:
        os._exit(3)
    return {"n": payload["n"]}


def test_dead_worker_fails_only_its_item(tmp_path):
    items = _items(12)
    results = list(run_items(crashy, items, workers=2, state_dir=tmp_path))
    assert [r.key for r in results] == [f"k{n}" for n in range(12)]
    assert [r.key for r in results if not r.ok] == ["k5"]
    assert "worker process died" in results[5].error
    # the failure is saved like any other result: a resumed run agrees without re-running it
    again = list(run_items(crashy, items, workers=2, state_dir=tmp_path))
    assert all(r.skipped for r in again) and _plain(again) == _plain(results)
