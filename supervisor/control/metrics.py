"""The Prometheus metrics raytrader exports: one registry, served by the supervisor.

Every metric is declared here, once; actors refer to them by name in heartbeat deltas and
the supervisor applies the deltas. Names follow Prometheus conventions: `raytrader_`
prefix, base units in the name (`_seconds`), `_total` for counters. Money is in the
portfolio's quote currency (USD/USDT).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from actors.domain.telemetry import MetricDelta

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class MetricSpec:
    type: str
    name: str
    help: str
    labels: tuple[str, ...] = ()


SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("gauge", "raytrader_actor_up", "1 while the actor's heartbeat is fresh", ("kind", "actor")),
    MetricSpec(
        "counter",
        "raytrader_actor_restarts_total",
        "Actor restarts seen by the supervisor",
        ("kind", "actor"),
    ),
    MetricSpec(
        "gauge",
        "raytrader_heartbeat_age_seconds",
        "Seconds since the actor's last heartbeat",
        ("kind", "actor"),
    ),
    MetricSpec(
        "counter",
        "raytrader_loop_errors_total",
        "Turns of an actor's periodic loop (exit timers, fill polls, checkpoints) that raised",
        ("kind", "loop"),
    ),
    MetricSpec("counter", "raytrader_events_total", "Market events ingested by a feed", ("feed", "type")),
    MetricSpec(
        "gauge",
        "raytrader_feed_lag_seconds",
        "Wall time a feed's newest event waited before delivery",
        ("feed",),
    ),
    MetricSpec(
        "counter",
        "raytrader_feed_quiet_skips_total",
        "Calls a feed did not make: every price of the batch was inside the position's quiet band",
        ("feed",),
    ),
    MetricSpec(
        "counter", "raytrader_feed_conflated_total", "Book updates superseded before delivery", ("feed",)
    ),
    MetricSpec("counter", "raytrader_signals_total", "Signals emitted by strategies", ("strategy", "side")),
    MetricSpec(
        "counter",
        "raytrader_gate_rejections_total",
        "Signals refused by a portfolio gate",
        ("strategy", "gate"),
    ),
    MetricSpec(
        "counter", "raytrader_orders_total", "Order status transitions at the venue", ("venue", "status")
    ),
    MetricSpec("counter", "raytrader_fills_total", "Fills received", ("venue",)),
    MetricSpec(
        "counter",
        "raytrader_venue_errors_total",
        "Venue calls that failed, by error kind",
        ("venue", "error"),
    ),
    MetricSpec(
        "counter",
        "raytrader_orders_refused_total",
        "Orders refused before sending: they broke a venue rule (tick, step, notional, price band)",
        ("venue", "rule"),
    ),
    MetricSpec(
        "counter",
        "raytrader_pushed_fills_total",
        "Fills first learnt from a venue's push stream (the others came by the REST poll)",
        ("venue",),
    ),
    MetricSpec(
        "counter",
        "raytrader_user_stream_reconnects_total",
        "Venue push streams (Binance's user data stream) re-opened after a drop",
        ("venue",),
    ),
    MetricSpec("gauge", "raytrader_user_stream_up", "1 while a venue's push stream is connected", ("venue",)),
    MetricSpec("gauge", "raytrader_open_positions", "Positions currently open"),
    MetricSpec("gauge", "raytrader_open_orders", "Orders currently open at the venue", ("venue",)),
    MetricSpec("gauge", "raytrader_equity", "Portfolio equity, marked to market (quote currency)"),
    MetricSpec("gauge", "raytrader_realized_pnl", "Realised P&L after fees (quote currency)"),
    MetricSpec("gauge", "raytrader_unrealized_pnl", "Unrealised P&L of open positions (quote currency)"),
    MetricSpec("gauge", "raytrader_drawdown_ratio", "Drawdown of equity from its peak, 0..1"),
    MetricSpec("gauge", "raytrader_fees_paid", "Fees paid so far (quote currency)"),
    MetricSpec("counter", "raytrader_trades_total", "Round trips closed", ("strategy", "exit_reason")),
    MetricSpec(
        "histogram",
        "raytrader_tick_to_order_seconds",
        "Market event entering a feed to order accepted by the venue",
    ),
    MetricSpec("histogram", "raytrader_checkpoint_seconds", "Time to commit one checkpoint to LMDB"),
    MetricSpec(
        "counter", "raytrader_orphan_orders_total", "Open venue orders owned by no live actor, cancelled"
    ),
    MetricSpec(
        "counter", "raytrader_stuck_positions_total", "Positions found stuck and re-driven", ("cause",)
    ),
    MetricSpec(
        "gauge", "raytrader_halted", "1 while new entries are halted (kill switch, budget, loss limit)"
    ),
    MetricSpec(
        "gauge",
        "raytrader_activity_age_seconds",
        "Seconds (runtime clock) since the bot last traded or evaluated a signal",
    ),
    MetricSpec(
        "gauge",
        "raytrader_no_activity",
        "1 while nothing has been traded nor evaluated for notify.no_activity_s",
    ),
    MetricSpec(
        "gauge",
        "raytrader_pending_redemptions_usdc",
        "Live: USDC of winning Polymarket shares waiting for an on-chain redemption",
    ),
    MetricSpec(
        "gauge",
        "raytrader_unreadable_positions",
        "Position records in the store that do not decode: not restored, their orders kept",
    ),
    MetricSpec(
        "counter", "raytrader_restart_budget_spent_total", "Actors whose restart budget ran out", ("kind",)
    ),
    MetricSpec("counter", "raytrader_bad_messages_total", "Malformed inputs rejected", ("source",)),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}


class MetricsRegistry:
    """Owns the prometheus-client objects and applies heartbeat deltas to them. It imports
    prometheus-client itself: every actor loads this module with the supervisor's class (Ray
    imports it to make the handle their heartbeats go to), and only the supervisor needs it."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Any] = {}
        for spec in SPECS:
            name = spec.name.removesuffix("_total") if spec.type == "counter" else spec.name
            if spec.type == "counter":
                metric: Any = Counter(name, spec.help, spec.labels, registry=self.registry)
            elif spec.type == "gauge":
                metric = Gauge(name, spec.help, spec.labels, registry=self.registry)
            else:
                metric = Histogram(
                    name, spec.help, spec.labels, buckets=LATENCY_BUCKETS, registry=self.registry
                )
            self._metrics[spec.name] = metric
        self._server: Any = None

    def _child(self, name: str, labels: dict[str, str]) -> Any:
        spec = SPEC_BY_NAME[name]
        metric = self._metrics[name]
        if not spec.labels:
            return metric
        return metric.labels(**{k: labels.get(k, "") for k in spec.labels})

    def inc(self, name: str, labels: dict[str, str] | None = None, value: float = 1.0) -> None:
        self._child(name, labels or {}).inc(value)

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self._child(name, labels or {}).set(value)

    def forget(self, name: str, labels: dict[str, str]) -> None:
        """Drop one labelled series (an actor that no longer exists): absent, not stuck at a value."""
        spec = SPEC_BY_NAME[name]
        with contextlib.suppress(KeyError):
            self._metrics[name].remove(*(labels.get(k, "") for k in spec.labels))

    def observe(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self._child(name, labels or {}).observe(value)

    def apply(self, deltas: Iterable[MetricDelta]) -> int:
        """Apply deltas from a heartbeat; unknown names are counted as bad messages, not raised."""
        applied = 0
        for delta in deltas:
            spec = SPEC_BY_NAME.get(delta.name)
            if spec is None or spec.type != delta.type:
                log.warning("heartbeat carried unknown metric %s (%s)", delta.name, delta.type)
                self.inc("raytrader_bad_messages_total", {"source": "heartbeat"})
                continue
            child = self._child(delta.name, dict(delta.labels))
            if delta.type == "counter":
                child.inc(max(0.0, delta.values[0]))
            elif delta.type == "gauge":
                child.set(delta.values[0])
            else:
                for v in delta.values:
                    child.observe(v)
            applied += 1
        return applied

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server; returns the bound port (0 picks a free one)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound: int = server.server_address[1]
        log.info("metrics served at http://%s:%d/metrics", host, bound)
        return bound

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
