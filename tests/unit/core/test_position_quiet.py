"""The quiet band (actors/core/position_quiet.py): a core that is given only the prices outside its
band, the band re-read after every price it sees and every fill, places, cancels and closes exactly
as a core given every price, and ends in the same state but for its mark and the high it tracks
below the trailing activation."""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.core.position import PositionCore
from actors.core.position_quiet import QuietBand
from actors.domain.model import (
    MINUTE_MS,
    BookLevel,
    CancelOrder,
    Candle,
    Command,
    ExitReason,
    ExitStatus,
    OrderBook,
    OrderStatus,
    PlaceOrder,
    PositionClosed,
    Settlement,
    Side,
)
from config.models import ExitConfig
from tests.unit.core.position_helpers import SPOT, T0, D, fill, opened

TIGHT = ExitConfig(
    target_one_pct=0.02,
    target_two_pct=0.05,
    stop_pct=0.03,
    time_exit_s=3600,
    time_exit_band_pct=0.004,
    trailing_activate_pct=0.01,
    trailing_lock_pct=0.002,
    trailing_distance_pct=0.006,
)


def _candle(low: float, high: float, close: float, ts_ms: int) -> Candle:
    return Candle(market=SPOT.market_id, ts_ms=ts_ms, open=close, high=high, low=low, close=close, volume=1.0)


def _settle(core: PositionCore, cmds: list[Command], now: int, log: list[Any]) -> None:
    """The venue's answers: places acknowledged, cancels confirmed; every command logged."""
    queue = list(cmds)
    while queue:
        cmd = queue.pop(0)
        if isinstance(cmd, PlaceOrder):
            o = cmd.order
            log.append(("place", o.client_id, o.purpose, o.price, o.qty))
            queue += core.on_order_update(o.client_id, OrderStatus.OPEN, D(0), now)
        elif isinstance(cmd, CancelOrder):
            log.append(("cancel", cmd.client_id))
            filled = core.orders[cmd.client_id].filled_qty
            queue += core.on_order_update(cmd.client_id, OrderStatus.CANCELLED, filled, now)
        elif isinstance(cmd, PositionClosed):
            log.append(("closed", cmd.exit_reason, cmd.realized_pnl, cmd.ts_ms))


def _fills(core: PositionCore, high: float, now: int, log: list[Any]) -> bool:
    """The venue fills every resting sell the bar's high is above, at its price."""
    filled = False
    for order in list(core.orders.values()):
        if order.side is Side.SELL and order.is_open and order.price is not None and high > order.price:
            left = order.qty - order.filled_qty
            cmds = core.on_fill(
                fill(
                    core, order.client_id, str(order.price), str(left), ts=now, fid=f"{order.client_id}@{now}"
                )
            )
            cmds += core.on_order_update(order.client_id, OrderStatus.FILLED, order.qty, now)
            log.append(("fill", order.client_id, order.price, left))
            _settle(core, cmds, now, log)
            filled = True
    return filled


def _run(
    config: ExitConfig, bars: list[tuple[float, float, float]], quiet: bool
) -> tuple[list[Any], dict[str, Any], int]:
    core, places = opened(SPOT, qty="1", price="100", config=config)
    log: list[Any] = []
    _settle(core, list(places), T0, log)
    band = core.quiet_band() if quiet else None
    skipped = 0
    for i, (low, high, close) in enumerate(bars):
        if core.position.status is ExitStatus.CLOSED:
            break
        ts = T0 + i * MINUTE_MS
        now = ts + MINUTE_MS
        if _fills(core, high, now, log) and quiet:
            band = core.quiet_band()  # a fill ends the band: the shell publishes a new one
        if band is not None and band.last_price([_candle(low, high, close, ts)]) is not None:
            skipped += 1
            continue
        cmds: list[Command] = []
        for price in (low, high, close):
            cmds += core.on_price(D(repr(price)), now)
        _settle(core, cmds, now, log)
        if quiet:
            band = core.quiet_band()
    state = core.state()
    state["seen_fills"] = state["seen_fills"][1:]  # the entry's fill id is the helpers' counter
    for volatile in ("high", "last_price"):
        state.pop(volatile)
    state["position"].pop("mark_price")
    return log, state, skipped


def _walk(seed: int, n: int, sigma: float) -> list[tuple[float, float, float]]:
    rng = random.Random(seed)
    price = 100.0
    bars = []
    for _ in range(n):
        close = round(price * (1 + rng.gauss(0, sigma)), 2)
        low = round(min(price, close) * (1 - abs(rng.gauss(0, sigma / 2))), 2)
        high = round(max(price, close) * (1 + abs(rng.gauss(0, sigma / 2))), 2)
        bars.append((low, high, close))
        price = close
    return bars


PATHS = (
    [
        pytest.param(ExitConfig(), 0.0015 + 0.0005 * (seed % 4), seed, id=f"default_exits-{seed}")
        for seed in range(8)
    ]
    + [pytest.param(TIGHT, 0.0015, seed, id=f"tight_exits-{seed}") for seed in range(8)]
    + [pytest.param(TIGHT, 0.0004, seed, id=f"calm_tight_exits-{seed}") for seed in range(8)]
)


@pytest.mark.parametrize(("config", "sigma", "seed"), PATHS)
def test_core_given_only_unquiet_prices_acts_as_with_every_price(
    config: ExitConfig, sigma: float, seed: int
) -> None:
    bars = _walk(seed, 600, sigma)
    every_log, every_state, _ = _run(config, bars, quiet=False)
    quiet_log, quiet_state, skipped = _run(config, bars, quiet=True)
    assert quiet_log == every_log
    assert quiet_state == every_state
    assert skipped > 0


def test_the_paths_compared_close_by_every_price_rule_and_mostly_skip() -> None:
    """What the comparison above covers: stops, trailing stops, targets and time exits all fire, and
    most of the bars a position is held are skipped."""
    reasons: set[ExitReason] = set()
    skipped = held = 0
    for param in PATHS:
        config, sigma, seed = param.values
        log, _state, s = _run(config, _walk(seed, 600, sigma), quiet=True)
        reasons |= {e[1] for e in log if e[0] == "closed"}
        skipped += s
        held += _held_bars(config, _walk(seed, 600, sigma))
    assert reasons >= {ExitReason.STOP, ExitReason.TRAILING, ExitReason.TARGET_TWO, ExitReason.TIME_EXIT}
    assert skipped > held // 2


def _held_bars(config: ExitConfig, bars: list[tuple[float, float, float]]) -> int:
    log, _state, _ = _run(config, bars, quiet=False)
    closes = [e[3] for e in log if e[0] == "closed"]
    return len(bars) if not closes else (closes[0] - T0) // MINUTE_MS


def test_band_stops_short_of_the_stop_the_targets_and_the_activation() -> None:
    core, places = opened(SPOT, qty="1", price="100", config=TIGHT)
    _settle(core, list(places), T0, [])
    core.on_price(D("100.5"), T0 + MINUTE_MS)  # above the time band (0.4%): no clock
    band = core.quiet_band()
    assert band is not None
    assert band.low > 100.4  # above the time band's upper edge
    assert band.low == pytest.approx(100.4)
    assert band.high < 101  # trailing activates at +1%
    assert band.high == pytest.approx(101)
    assert band.until_ms is None
    core.on_price(D("100.1"), T0 + 2 * MINUTE_MS)  # in the band: its clock starts
    band = core.quiet_band()
    assert band is not None
    assert (band.low, band.high) == (pytest.approx(99.6), pytest.approx(100.4))
    assert band.until_ms == T0 + 2 * MINUTE_MS + 3600 * 1000
    candle = _candle(99.9, 100.2, 100.05, T0 + 2 * MINUTE_MS)
    assert band.last_price([candle]) == D("100.05")
    late = _candle(99.9, 100.2, 100.05, T0 + 3600 * 1000 + MINUTE_MS)
    assert band.last_price([late]) is None  # the time exit is due by then
    book = OrderBook(
        market=SPOT.market_id,
        ts_ms=T0,
        bids=(BookLevel(price=D("100.01"), size=D(1)),),
        asks=(BookLevel(price=D("100.02"), size=D(1)),),
    )
    assert band.last_price([candle, book]) == D("100.01")
    settle = Settlement(market=SPOT.market_id, ts_ms=T0, payout=D(1))
    assert band.last_price([settle]) is None


def test_mark_from_a_band_equals_the_cores_own_mark() -> None:
    core, places = opened(SPOT, qty="1", price="100", config=ExitConfig())
    _settle(core, list(places), T0, [])
    core.on_price(D("100.2"), T0 + MINUTE_MS)
    band = core.quiet_band()
    assert isinstance(band, QuietBand)
    core.on_price(D("100.37"), T0 + 2 * MINUTE_MS)
    pos = core.position
    mark = band.mark(D("100.37"))
    assert (mark.mark_value, mark.unrealized_pnl, mark.realized_pnl) == (
        pos.mark_value,
        pos.unrealized_pnl,
        pos.realized_pnl,
    )
    assert (mark.notional, mark.entry_qty, mark.status) == (
        pos.entry_price * pos.entry_qty,
        pos.entry_qty,
        "open",
    )


def test_no_band_while_entering_closing_or_closed() -> None:
    core, places = opened(SPOT, qty="1", price="100", config=TIGHT)
    assert core.quiet_band() is None  # no mark yet
    _settle(core, list(places), T0, [])
    core.on_price(D("100.1"), T0 + MINUTE_MS)
    assert core.quiet_band() is not None
    core.on_price(D("96"), T0 + 2 * MINUTE_MS)  # through the stop: closing
    assert core.position.status is ExitStatus.CLOSING
    assert core.quiet_band() is None
