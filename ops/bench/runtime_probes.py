"""What the runtime benchmark ships into Ray actors: the probes it runs inside them through
``__ray_call__`` (no runtime code changed) and the trivial actor that measures Ray's own
restart floor.

They travel by value, as they did when they lived in the benchmark script's ``__main__``:
a worker then needs nothing of ``ops.bench`` to run them, and the trivial actor's process
loads no raytrader module, so the floor it measures stays Ray's alone.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import ray
import ray.cloudpickle

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]


def _install_venue_probe(self: Any) -> int:
    """Keep every raw tick-to-order observation of the paper venue, with its order's purpose."""
    import contextvars
    import time as _time

    if hasattr(self, "_bench_samples"):
        return len(self._bench_samples)
    samples: list[tuple[float, str | None, float, str | None]] = []
    current: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
        "bench_order", default=None
    )
    old = self.metrics

    class RecordingBuffer(type(old)):  # type: ignore[misc]
        def observe(self, name: str, value: float, labels: Any = None) -> None:
            if name == "raytrader_tick_to_order_seconds":
                order = current.get()
                samples.append(
                    (value, order[0] if order else None, _time.time(), order[1] if order else None)
                )
            super().observe(name, value, labels)

    new = RecordingBuffer()
    new._counters, new._gauges, new._histograms = old._counters, old._gauges, old._histograms
    self.metrics = new
    engine = self.paper.engine  # the paper gateway's matching engine
    engine_submit = engine.submit

    def submit(order: Any, now_ms: int) -> Any:
        current.set((order.purpose, order.client_id))  # this call's task context
        return engine_submit(order, now_ms)

    engine.submit = submit
    self._bench_samples = samples
    return 0


def _venue_samples(self: Any) -> list[tuple[float, str | None, float, str | None]]:
    return list(getattr(self, "_bench_samples", []))


def _install_feed_probe(self: Any) -> bool:
    """Log (ingest_ns, done_ns, events) of every batch the feed delivers."""
    import time as _time

    if hasattr(self, "_bench_batches"):
        return False
    batches: list[tuple[int, int, int]] = []
    deliver = self._deliver

    async def logged(batch: Any, ingest_ns: int) -> None:
        await deliver(batch, ingest_ns)
        batches.append((ingest_ns, _time.time_ns(), len(batch)))

    self._deliver = logged
    self._bench_batches = batches
    return True


def _feed_batches(self: Any) -> list[tuple[int, int, int]]:
    return list(getattr(self, "_bench_batches", []))


def _install_stage_probe(self: Any) -> bool:
    """Log (consumer, seconds, wall end) of every call the feed makes to a consumer (from submission
    to its answer, as the feed waits for it) and of every checkpoint it writes: where a batch's
    time goes. A position's calls are logged as ``position``, a strategy's under its name."""
    import time as _time

    if hasattr(self, "_bench_stages"):
        return False
    stages: list[tuple[str, float, float]] = []
    lookup = self.handle

    class Timed:
        def __init__(self, handle: Any, label: str, method: str) -> None:
            self.handle, self.label, self.method = handle, label, method

        def remote(self, *args: Any) -> Any:
            started = _time.perf_counter()
            ref = getattr(self.handle, self.method).remote(*args)

            async def answer() -> Any:
                try:
                    return await ref
                finally:
                    stages.append((self.label, _time.perf_counter() - started, _time.time()))

            return answer()

    class Handle:
        def __init__(self, handle: Any, name: str) -> None:
            kind = name.split(":", 1)[0]
            self._handle, self._label = handle, name if kind == "strategy" else kind

        def __getattr__(self, method: str) -> Timed:
            return Timed(self._handle, f"{self._label}.{method}", method)

    def handle(name: str) -> Any:
        found = lookup(name)
        return None if found is None else Handle(found, name)

    checkpoint = self._checkpoint

    async def timed_checkpoint() -> None:
        started = _time.perf_counter()
        try:
            await checkpoint()
        finally:
            stages.append(("store.feed_checkpoint", _time.perf_counter() - started, _time.time()))

    self.handle = handle
    self._checkpoint = timed_checkpoint
    self._bench_stages = stages
    return True


def _feed_stages(self: Any) -> list[tuple[str, float, float]]:
    return list(getattr(self, "_bench_stages", []))


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class _Trivial:
    """The smallest restartable actor: Ray's own restart cost, without raytrader's imports or state."""

    def pid(self) -> int:
        return os.getpid()
