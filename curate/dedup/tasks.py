"""How the dedup searches run their work: as Ray tasks when a session is up (one CPU each, at most as many in
flight as the cluster has CPUs, so memory stays bounded by that many tasks), else the same calls in this process.
Results come back in call order either way, so the outcome never depends on which task finished first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def shared(value: Any) -> Any:
    """`value` put once into Ray's object store (tasks read it without a copy each), or itself without Ray."""
    import ray

    return ray.put(value) if ray.is_initialized() else value


def run_tasks(fn: Callable, calls: list[tuple], in_flight: int = 0) -> list:
    """fn(*args) for each args in `calls`, in call order."""
    import ray

    if not ray.is_initialized() or not calls:
        return [fn(*args) for args in calls]
    task = ray.remote(num_cpus=1)(fn)
    limit = in_flight or max(1, int(ray.cluster_resources().get("CPU", 1)))
    refs: list = []
    running: list = []
    for args in calls:
        if len(running) >= limit:
            _, running = ray.wait(running, num_returns=1)  # a slot frees before the next task starts
        refs.append(task.remote(*args))
        running.append(refs[-1])
    return ray.get(refs)
