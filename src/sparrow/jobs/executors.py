"""Run a stage's items in this process, on a local process pool, or on Ray; results in input order.

- resumable: each finished item's result is saved atomically under ``state_dir``; a re-run skips it
  (unless the stage says the saved result no longer holds);
- deterministic: results come back in input order, whatever the worker count;
- streaming: at most a few items per worker are in flight, so memory stays flat for any input size;
- robust: an exception in one item becomes that item's error result; a worker process that dies
  fails only the item that killed it.

Every worker gets its own copy of the stage and calls ``setup()`` once before its first item.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sparrow.jobs.items import execute, resumed
from sparrow.jobs.ray_executor import run_ray
from sparrow.jobs.stage import ItemResult, JobError, Stage, WorkItem
from sparrow.jobs.state import save_result

EXECUTORS = ("local", "ray")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_items(
    stage: Stage,
    items: Iterable[WorkItem],
    *,
    workers: int = 1,
    state_dir: str | os.PathLike | None = None,
    executor: str = "local",
    max_in_flight_per_worker: int = 4,
    mp_context: str | None = None,
) -> Iterator[ItemResult]:
    """Yield one ItemResult per item, in input order.

    ``executor="local"`` with ``workers <= 1`` runs in this process (simplest to debug), with more on a
    process pool; ``executor="ray"`` sends items to ``workers`` Ray actors (``pip install
    'sparrow-vllm[ray]'``)."""
    if executor not in EXECUTORS:
        raise JobError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    sdir = Path(state_dir) if state_dir is not None else None
    if executor == "ray":
        yield from run_ray(stage, items, workers, sdir, max_in_flight_per_worker)
    elif workers <= 1:
        yield from _run_inline(stage, items, sdir)
    else:
        ctx = mp.get_context(mp_context or "forkserver")
        yield from _run_pool(stage, items, workers, sdir, max_in_flight_per_worker, ctx)


def _run_inline(stage: Stage, items: Iterable[WorkItem], sdir: Path | None) -> Iterator[ItemResult]:
    ready = False
    sdir_str = str(sdir) if sdir is not None else None
    for item in items:
        done = resumed(stage, item, sdir)
        if done is not None:
            yield done
            continue
        if not ready:  # set up on the first item that needs work: a fully resumed run loads nothing
            stage.setup()
            ready = True
        yield execute(stage, item.key, item.payload, sdir_str)


# ------------------------------------------------------------------------------------- process pool

# This worker process's stage, set up once by the pool initializer (each process has its own).
_worker_stage: Stage | None = None


def _init_worker(stage: Stage) -> None:
    global _worker_stage
    stage.setup()
    _worker_stage = stage


def _pool_task(key: str, payload: Any, state_dir: str | None) -> ItemResult:
    assert _worker_stage is not None, "worker used before its initializer ran"
    return execute(_worker_stage, key, payload, state_dir)


def _new_pool(stage: Stage, workers: int, ctx: Any) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(stage,)
    )


def _run_pool(
    stage: Stage, items: Iterable[WorkItem], workers: int, sdir: Path | None, per_worker: int, ctx: Any
) -> Iterator[ItemResult]:
    sdir_str = str(sdir) if sdir is not None else None
    limit = max(1, workers * per_worker)
    # Results are released strictly in input order; `pending` holds the in-order queue of
    # [item, slot] where slot is a Future, a finished ItemResult, or None (submit failed).
    pending: list[list[Any]] = []
    pool = _new_pool(stage, workers, ctx)
    try:
        it = iter(items)
        exhausted = False
        while True:
            # Keep `limit` items running; finished ones may wait (bounded) behind a slow item at the head.
            running = sum(isinstance(x[1], Future) and not x[1].done() for x in pending)
            while not exhausted and running < limit and len(pending) < 4 * limit:
                item = next(it, None)
                if item is None:
                    exhausted = True
                    break
                slot: Future | ItemResult | None = resumed(stage, item, sdir)
                if slot is None:
                    try:
                        slot = pool.submit(_pool_task, item.key, item.payload, sdir_str)
                        running += 1
                    except BrokenProcessPool:
                        slot = None
                pending.append([item, slot])
            if any(x[1] is None or _broke(x[1]) for x in pending):
                pool = _recover(stage, pool, pending, sdir_str, workers, ctx)
            # (a slot that broke after the check above waits for the next round's recovery)
            while pending and (
                not isinstance(pending[0][1], Future) or (pending[0][1].done() and not _broke(pending[0][1]))
            ):
                item, slot = pending.pop(0)
                yield slot if isinstance(slot, ItemResult) else _future_result(item.key, slot)
            if not pending and exhausted:
                return
            # Sleep until one more item finishes (never spin on futures that are already done).
            not_done = [x[1] for x in pending if isinstance(x[1], Future) and not x[1].done()]
            if not_done:
                wait(not_done, return_when=FIRST_COMPLETED)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _broke(slot: Future | ItemResult | None) -> bool:
    return (
        isinstance(slot, Future)
        and slot.done()
        and not slot.cancelled()
        and isinstance(slot.exception(), BrokenProcessPool)
    )


def _recover(
    stage: Stage,
    pool: ProcessPoolExecutor,
    pending: list[list[Any]],
    sdir_str: str | None,
    workers: int,
    ctx: Any,
) -> ProcessPoolExecutor:
    """A worker process died (crash, out of memory) and took the pool with it. Every item that was in
    flight is run again alone in a fresh process: the one that kills its process again gets an error
    result (saved, so a resumed run agrees), the others their normal result. Then work goes on."""
    pool.shutdown(wait=True, cancel_futures=True)
    for entry in pending:
        item, slot = entry
        if slot is not None and not _broke(slot):
            continue
        solo = _new_pool(stage, 1, ctx)
        try:
            entry[1] = solo.submit(_pool_task, item.key, item.payload, sdir_str).result()
        except BrokenProcessPool:
            _check_workers_start(stage, ctx)  # a worker that cannot even start is fatal, not the item's
            entry[1] = ItemResult(
                key=item.key, ok=False, error="the worker process died on this item (crash or out of memory)"
            )
            if sdir_str is not None:
                save_result(Path(sdir_str), entry[1])
        finally:
            solo.shutdown(wait=True)
    return _new_pool(stage, workers, ctx)


def _check_workers_start(stage: Stage, ctx: Any) -> None:
    """Raise JobError when a fresh worker process cannot set up and run a trivial task."""
    probe = _new_pool(stage, 1, ctx)
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
