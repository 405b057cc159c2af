"""Run a per-item function over many items: in-process, on a local process pool, or on Ray.

Every long data job in Sparrow (synth, frames, world) is a stream of independent items. This runner
gives them the same guarantees:

- resumable: each finished item's result is saved atomically under ``state_dir``; a re-run skips it;
- deterministic: results come back in input order, whatever the worker count, so outputs assembled
  from them are byte-identical for any ``workers``;
- streaming: at most a few items per worker are in flight, so memory stays flat for any input size;
- robust: an exception in one item becomes that item's error result; the job goes on.

The per-item function must be a picklable top-level callable taking the payload and returning a
JSON-serialisable dict. It raises to report a per-item failure; the exception's message becomes the
one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparrow.io import atomic_write_text

EXECUTORS = ("local", "ray")


class JobError(RuntimeError):
    """A whole job cannot run (bad state directory, unknown executor)."""


@dataclass
class WorkItem:
    """One unit of work. ``key`` must be unique and stable across runs (it names the saved result)."""

    key: str
    payload: Any


@dataclass
class ItemResult:
    key: str
    ok: bool
    value: dict[str, Any] | None = None
    error: str | None = None
    skipped: bool = False  # finished by an earlier run and loaded from state


@dataclass
class JobSummary:
    total: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, r: ItemResult) -> None:
        self.total += 1
        self.ok += r.ok
        self.failed += not r.ok
        self.skipped += r.skipped


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _state_file(state_dir: Path, key: str) -> Path:
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
    return state_dir / digest[:2] / f"{digest}.json"


def _run_one(
    fn: Callable[[Any], dict[str, Any]], key: str, payload: Any, state_dir: str | None
) -> ItemResult:
    try:
        value = fn(payload)
        result = ItemResult(key=key, ok=True, value=value)
    except Exception as e:  # a per-item failure must never stop the job
        # Typed library errors carry a message meant for users; for builtin ones (KeyError('x') prints
        # as "'x'") the type name is part of the reason.
        builtin = type(e).__module__ == "builtins" and type(e) not in (ValueError, RuntimeError)
        reason = f"{type(e).__name__}: {e}" if builtin or not str(e) else str(e)
        result = ItemResult(key=key, ok=False, error=reason.splitlines()[0] if reason else type(e).__name__)
    if state_dir is not None:
        _save(Path(state_dir), result)
    return result


def _save(state_dir: Path, result: ItemResult) -> None:
    record = {"key": result.key, "ok": result.ok, "value": result.value, "error": result.error}
    atomic_write_text(_state_file(state_dir, result.key), json.dumps(record))


def prepare_state(state_dir: str | os.PathLike, fingerprint: dict[str, Any], overwrite: bool = False) -> Path:
    """Create (or reuse) a job's state directory. A directory left by a run with different settings is
    refused unless ``overwrite`` — mixing results of two configurations would silently corrupt output."""
    state_dir = Path(state_dir)
    fp_path = state_dir / "fingerprint.json"
    fp_text = json.dumps(fingerprint, sort_keys=True, default=str)
    if state_dir.exists() and overwrite:
        shutil.rmtree(state_dir)
    if fp_path.exists():
        if fp_path.read_text() != fp_text:
            raise JobError(
                f"{state_dir} holds a run with different settings; use a new output directory or --overwrite"
            )
    else:
        state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(fp_path, fp_text)
    return state_dir


def _load_done(state_dir: Path | None, key: str) -> ItemResult | None:
    if state_dir is None:
        return None
    path = _state_file(state_dir, key)
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged state file is redone, not trusted
    if d.get("key") != key:
        return None
    return ItemResult(key=key, ok=bool(d["ok"]), value=d.get("value"), error=d.get("error"), skipped=True)


def run_items(
    fn: Callable[[Any], dict[str, Any]],
    items: Iterable[WorkItem],
    *,
    workers: int = 1,
    state_dir: str | os.PathLike | None = None,
    executor: str = "local",
    max_in_flight_per_worker: int = 4,
    mp_context: str | None = None,
) -> Iterator[ItemResult]:
    """Yield one ItemResult per item, in input order.

    ``workers <= 1`` runs in this process (simplest to debug); more uses a process pool; ``executor="ray"``
    sends items to a Ray cluster (``pip install sparrow-vllm[ray]``).
    """
    if executor not in EXECUTORS:
        raise JobError(f"unknown executor {executor!r}; choose from {EXECUTORS}")
    sdir = Path(state_dir) if state_dir is not None else None
    sdir_str = str(sdir) if sdir is not None else None
    if executor == "ray":
        yield from _run_ray(fn, items, workers, sdir, max_in_flight_per_worker)
        return
    if workers <= 1:
        for item in items:
            done = _load_done(sdir, item.key)
            yield done if done is not None else _run_one(fn, item.key, item.payload, sdir_str)
        return

    ctx = mp.get_context(mp_context) if mp_context else mp.get_context("forkserver")
    limit = max(1, workers * max_in_flight_per_worker)
    # Results are released strictly in input order; `pending` holds the in-order queue of
    # [key, payload, slot] where slot is a Future, a finished ItemResult, or None (submit failed).
    pending: list[list[Any]] = []
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        it = iter(items)
        exhausted = False
        while True:
            # Keep `limit` items running; finished ones may wait (bounded) behind a slow item at the head.
            running = sum(isinstance(x[2], Future) and not x[2].done() for x in pending)
            while not exhausted and running < limit and len(pending) < 4 * limit:
                try:
                    item = next(it)
                except StopIteration:
                    exhausted = True
                    break
                slot: Future | ItemResult | None = _load_done(sdir, item.key)
                if slot is None:
                    try:
                        slot = pool.submit(_run_one, fn, item.key, item.payload, sdir_str)
                        running += 1
                    except BrokenProcessPool:
                        slot = None
                pending.append([item.key, item.payload, slot])
            if any(x[2] is None or _broke(x[2]) for x in pending):
                pool = _recover(pool, pending, fn, sdir_str, workers, ctx)
            # (a slot that broke after the check above waits for the next round's recovery)
            while pending and (
                not isinstance(pending[0][2], Future) or (pending[0][2].done() and not _broke(pending[0][2]))
            ):
                key, _, slot = pending.pop(0)
                yield slot if isinstance(slot, ItemResult) else _future_result(key, slot)
            if not pending and exhausted:
                return
            # Sleep until one more item finishes (never spin on futures that are already done).
            not_done = [x[2] for x in pending if isinstance(x[2], Future) and not x[2].done()]
            if not_done:
                wait(not_done, return_when=FIRST_COMPLETED)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _broke(slot: Future | ItemResult) -> bool:
    return (
        isinstance(slot, Future)
        and slot.done()
        and not slot.cancelled()
        and isinstance(slot.exception(), BrokenProcessPool)
    )


def _recover(
    pool: ProcessPoolExecutor,
    pending: list[list[Any]],
    fn: Callable[[Any], dict[str, Any]],
    sdir_str: str | None,
    workers: int,
    ctx: Any,
) -> ProcessPoolExecutor:
    """A worker process died (crash, out of memory) and took the pool with it. Every item that was in
    flight is run again alone in a fresh process: the one that kills its process again gets an error
    result (saved, so a resumed run agrees), the others their normal result. Then work goes on."""
    pool.shutdown(wait=True, cancel_futures=True)
    for entry in pending:
        key, payload, slot = entry
        if slot is not None and not _broke(slot):
            continue
        solo = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
        try:
            entry[2] = solo.submit(_run_one, fn, key, payload, sdir_str).result()
        except BrokenProcessPool:
            _check_workers_start(ctx)  # a worker that cannot even start is fatal, not this item's fault
            entry[2] = ItemResult(
                key=key, ok=False, error="the worker process died on this item (crash or out of memory)"
            )
            if sdir_str is not None:
                _save(Path(sdir_str), entry[2])
        finally:
            solo.shutdown(wait=True)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _check_workers_start(ctx: Any) -> None:
    """Raise JobError when a fresh worker process cannot run a trivial task."""
    probe = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
    try:
        probe.submit(os.getpid).result()
    except BrokenProcessPool as e:
        raise JobError("worker processes die as they start; run with --workers 1 to see why") from e
    finally:
        probe.shutdown(wait=True)


def _future_result(key: str, fut: Future) -> ItemResult:
    try:
        return fut.result()
    except Exception as e:  # the worker process itself died (e.g. killed by the OOM killer)
        return ItemResult(key=key, ok=False, error=f"worker failed: {type(e).__name__}: {e}".splitlines()[0])


def _run_ray(
    fn: Callable[[Any], dict[str, Any]],
    items: Iterable[WorkItem],
    workers: int,
    sdir: Path | None,
    per_worker: int,
) -> Iterator[ItemResult]:
    try:
        import ray
    except ImportError as e:
        raise JobError("executor 'ray' needs Ray: pip install 'sparrow-vllm[ray]'") from e
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(_run_one)
    limit = max(1, workers * per_worker)
    pending: list[tuple[str, Any]] = []
    sdir_str = str(sdir) if sdir is not None else None
    it = iter(items)
    exhausted = False
    while True:
        while not exhausted and sum(not isinstance(x, ItemResult) for _, x in pending) < limit:
            try:
                item = next(it)
            except StopIteration:
                exhausted = True
                break
            done = _load_done(sdir, item.key)
            pending.append(
                (item.key, done if done is not None else remote.remote(fn, item.key, item.payload, sdir_str))
            )
        if not pending:
            return
        key, slot = pending.pop(0)
        if isinstance(slot, ItemResult):
            yield slot
            continue
        try:
            yield ray.get(slot)
        except Exception as e:
            yield ItemResult(key=key, ok=False, error=f"ray task failed: {type(e).__name__}".splitlines()[0])


class Timer:
    """Wall-clock seconds of a block, for summaries."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
