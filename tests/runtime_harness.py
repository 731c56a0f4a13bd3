"""Shared helpers for tests that run the real Ray runtime: small data, isolated namespaces, waits."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from config.loader import load_settings
from config.models import Settings
from ops.sandbox_harness import SandboxThread
from supervisor.control import runtime
from tests.paths import REPO_ROOT as ROOT

BINANCE_1M = ROOT / "ops/data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"


def slice_csv(out: Path, rows: int, start: int = 0) -> Path:
    """The first ``rows`` bars (after ``start``) of the bundled BTCUSDT 1m data."""
    with BINANCE_1M.open() as src, out.open("w", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        writer.writerow(next(reader))
        for n, row in enumerate(reader):
            if n >= start + rows:
                break
            if n >= start:
                writer.writerow(row)
    return out


def binance_settings(
    tmp: Path, name: str, rows: int = 3000, extra: tuple[str, ...] = (), start: int = 0
) -> Settings:
    """Mean reversion + momentum breakout on a slice of real data, in its own namespace and store."""
    data = slice_csv(tmp / "btc.csv", rows, start)
    overrides = [
        f'state_dir="{tmp / "state"}"',
        f'replay.candles={{"binance:BTC/USDT" = "{data}"}}',
        f'runtime.namespace="{name}"',
        "metrics.port=0",
        "supervision.heartbeat_interval_s=0.5",
        "supervision.orphan_grace_s=1.0",
        "supervision.stuck_transient_s=3.0",
        "runtime.strategy_checkpoint_s=0.5",
        *extra,
    ]
    settings = load_settings(None, env={}, overrides=overrides)
    btc = {"market": "binance:BTC/USDT", "markets": ("binance:BTC/USDT",)}  # the one market sliced
    keep = [
        s.model_copy(update=btc)
        for s in settings.strategies
        if s.kind in ("mean_reversion", "momentum_breakout")
    ]
    return settings.model_copy(update={"strategies": keep})


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float = 120.0, poll_s: float = 0.2) -> Any:
    """Poll a condition until it holds (there is no push event to await across processes)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value {last!r}")


def run_to_end(settings: Settings, timeout_s: float = 240.0) -> dict[str, Any]:
    """Wait until the replay is over and no position is mid-transition."""
    return wait_for("the replay to finish", lambda: _quiet(settings), timeout_s)


def _quiet(settings: Settings) -> dict[str, Any] | None:
    snapshot = runtime.status(settings)
    return snapshot if runtime.quiescent(snapshot) else None


# --------------------------------------------------------------------------- live mode against the sandbox


def sandbox_venues(speed: float) -> Iterator[dict[str, Any]]:
    """Both sandbox venues on loopback in a thread (``speed`` bars a minute per minute; 0: frozen
    until advanced); yields their endpoints and keys. Wrap it in a module-scoped fixture."""
    thread = SandboxThread(speed=speed)
    yield thread.info
    thread.stop()


def live_settings(tmp: Path, sandbox: dict[str, Any], namespace: str, extra: Sequence[str] = ()) -> Settings:
    """Live mode against the sandbox venues (``sandbox_venues``' info): their endpoints and keys, a
    fresh state and namespace, no Polymarket strategy (it needs a wallet key), then ``extra``."""
    binance = sandbox["binance"]
    env = {
        "RAYTRADER_SECRETS__BINANCE_API_KEY": binance["api_key"],
        "RAYTRADER_SECRETS__BINANCE_API_SECRET": binance["api_secret"],
    }
    overrides = [
        'mode="live"',
        "live.confirm=true",
        "live.override_paper_minimum=true",
        f'live.binance.url="{binance["rest_url"]}"',
        f'live.binance.ws_url="{binance["ws_url"]}"',
        f'state_dir="{tmp / "state"}"',
        f'runtime.namespace="{namespace}"',
        "metrics.port=0",
        "supervision.heartbeat_interval_s=0.5",
        "strategies.polymarket_lag.enabled=false",
        *extra,
    ]
    return load_settings(None, env=env, overrides=overrides)
