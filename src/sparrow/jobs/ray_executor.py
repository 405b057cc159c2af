"""The Ray executor: a stage's items on a pool of Ray actors, one per worker, results in input order.

Each actor holds its own copy of the stage and calls ``setup()`` once, exactly like a local worker
process, so a stage runs unchanged on one machine or a cluster. ``ray.init()`` finds the cluster the
usual Ray way (``RAY_ADDRESS``, or the latest ``ray start`` on this machine, else a local runtime);
when the caller already started Ray, that runtime is used as it is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sparrow.jobs.items import execute, resumed
from sparrow.jobs.stage import ItemResult, JobError, Stage, WorkItem

RAY_MISSING = "executor 'ray' needs Ray: pip install 'sparrow-vllm[ray]'"


class _Worker:
    """One Ray actor: a set-up copy of the stage."""

    def __init__(self, stage: Stage):
        stage.setup()
        self.stage = stage

    def run(self, key: str, payload: Any, state_dir: str | None) -> ItemResult:
        return execute(self.stage, key, payload, state_dir)


def _start_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise JobError(RAY_MISSING) from e
    if not ray.is_initialized():
        try:
            ray.init(log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise JobError(f"cannot start or reach Ray: {str(e).splitlines()[0]}") from e
    return ray


def run_ray(
    stage: Stage, items: Iterable[WorkItem], workers: int, sdir: Path | None, per_worker: int
) -> Iterator[ItemResult]:
    ray = _start_ray()
    # Each actor reserves one CPU: never ask for more actors than the cluster has CPUs, or the extra
    # ones would wait forever for a CPU and their items with them.
    cpus = int(ray.cluster_resources().get("CPU", 1))
    n = max(1, min(workers, cpus))
    # A crashed actor is restarted (its setup runs again); only the item it was on fails.
    actor_cls = ray.remote(num_cpus=1, max_restarts=3)(_Worker)
    actors = [actor_cls.remote(stage) for _ in range(n)]
    load = [0] * n
    sdir_str = str(sdir) if sdir is not None else None
    limit = max(1, n * per_worker)
    # In-order queue of (item, slot, actor index): slot is a finished ItemResult or a Ray object ref.
    pending: deque[tuple[WorkItem, Any, int]] = deque()
    it = iter(items)
    exhausted = False
    try:
        while True:
            while not exhausted and sum(load) < limit:
                item = next(it, None)
                if item is None:
                    exhausted = True
                    break
                done = resumed(stage, item, sdir)
                if done is not None:
                    pending.append((item, done, -1))
                    continue
                a = min(range(n), key=lambda k: (load[k], k))  # the least busy actor
                load[a] += 1
                pending.append((item, actors[a].run.remote(item.key, item.payload, sdir_str), a))
            if not pending:
                return
            item, slot, a = pending.popleft()
            if isinstance(slot, ItemResult):
                yield slot
                continue
            load[a] -= 1
            try:
                result = ray.get(slot)
            except Exception as e:  # the actor died (crash, out of memory, node lost)
                result = ItemResult(key=item.key, ok=False, error=f"ray worker failed: {type(e).__name__}")
            yield result
    finally:
        for actor in actors:
            ray.kill(actor)
