"""Heartbeats and metric deltas: how every actor reports to the supervisor.

Actors never touch Prometheus themselves; they buffer metric deltas and ship them in their
heartbeat, so the one /metrics endpoint is served by the supervisor and a dead actor's
numbers are never half-published.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MetricType = Literal["counter", "gauge", "histogram"]
Labels = tuple[tuple[str, str], ...]


class MetricDelta(BaseModel):
    """One change: a counter increment, a gauge value, or histogram observations."""

    model_config = ConfigDict(frozen=True)

    type: MetricType
    name: str
    labels: Labels = ()
    values: tuple[float, ...]


class Heartbeat(BaseModel):
    """Who is alive, how far it got, what it owns; sent every interval by every actor."""

    model_config = ConfigDict(frozen=True)

    actor_id: str
    kind: str
    seq: int = Field(ge=0)
    incarnation: str = Field(description="changes on every restart: pid and start time")
    wall_ms: int
    last_progress_ms: int = Field(description="wall time of the last event the actor processed")
    event_ms: int | None = Field(default=None, description="data time of that event (replay clock)")
    digest: str = ""
    owned_orders: tuple[str, ...] = ()
    status: str = "ok"
    detail: dict[str, Any] = Field(default_factory=dict)
    metrics: tuple[MetricDelta, ...] = ()


def state_digest(state: Any) -> str:
    """Short stable hash of a JSON-able state, so the supervisor sees when state changes."""
    blob = json.dumps(state, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


class MetricsBuffer:
    """Accumulates an actor's metric deltas between heartbeats; drained into each heartbeat."""

    __slots__ = ("_counters", "_gauges", "_histograms")

    def __init__(self) -> None:
        self._counters: dict[tuple[str, Labels], float] = {}
        self._gauges: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], list[float]] = {}

    @staticmethod
    def _key(name: str, labels: dict[str, str] | None) -> tuple[str, Labels]:
        return name, tuple(sorted((labels or {}).items()))

    def inc(self, name: str, labels: dict[str, str] | None = None, value: float = 1.0) -> None:
        key = self._key(name, labels)
        self._counters[key] = self._counters.get(key, 0.0) + value

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self._gauges[self._key(name, labels)] = value

    def observe(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self._histograms.setdefault(self._key(name, labels), []).append(value)

    def drain(self) -> tuple[MetricDelta, ...]:
        out: list[MetricDelta] = []
        out += [
            MetricDelta(type="counter", name=n, labels=lb, values=(v,))
            for (n, lb), v in self._counters.items()
        ]
        out += [
            MetricDelta(type="gauge", name=n, labels=lb, values=(v,)) for (n, lb), v in self._gauges.items()
        ]
        out += [
            MetricDelta(type="histogram", name=n, labels=lb, values=tuple(v))
            for (n, lb), v in self._histograms.items()
        ]
        self._counters.clear()
        self._gauges.clear()
        self._histograms.clear()
        return tuple(out)

    def restore(self, deltas: tuple[MetricDelta, ...]) -> None:
        """Put back deltas whose heartbeat could not be delivered, so none are lost."""
        for d in deltas:
            key = (d.name, d.labels)
            if d.type == "counter":
                self._counters[key] = self._counters.get(key, 0.0) + d.values[0]
            elif d.type == "gauge":
                self._gauges.setdefault(key, d.values[0])
            else:
                self._histograms.setdefault(key, [])[:0] = list(d.values)
