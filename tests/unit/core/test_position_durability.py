"""What a position shell must checkpoint although the core emitted no command."""

from __future__ import annotations

from decimal import Decimal

from actors.core.position import PositionCore
from actors.domain.model import Fill, Instrument, OrderStatus, PlaceOrder
from config.models import ExitConfig

SPOT = Instrument(venue="binance", symbol="BTC/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"))
TIGHT = ExitConfig(trailing_activate_pct=0.002, trailing_lock_pct=0.001, trailing_distance_pct=0.002)
T0 = 1_700_000_000_000


def _opened(config: ExitConfig = TIGHT) -> PositionCore:
    core, cmds = PositionCore.enter(
        position_id="p1",
        strategy="s",
        instrument=SPOT,
        qty=Decimal("1"),
        limit_price=Decimal("100"),
        signal_strength=1.0,
        now_ms=T0,
        config=config,
    )
    entry = next(c for c in cmds if isinstance(c, PlaceOrder)).order
    core.on_fill(
        Fill(
            fill_id="f1",
            client_id=entry.client_id,
            market=entry.market,
            side=entry.side,
            price=Decimal("100"),
            qty=Decimal("1"),
            ts_ms=T0,
        )
    )
    return core


def test_risen_trailing_stop_without_command_changes_the_progress_marker() -> None:
    """Issue 10: the shell saved trailing-stop progress only with a command, so a restart lost
    a stop that had risen in silence. The core's progress marker is what the shell compares."""
    core = _opened()
    before_stop = core.position.stop_price
    marker = core.progress_marker()
    cmds = core.on_price(Decimal("100.50"), T0 + 60_000)  # above activation, below every target
    assert cmds == []  # silent: nothing for the shell to carry out, yet the stop rose
    assert core.position.stop_price > before_stop
    assert core.progress_marker() != marker
    restored = PositionCore.from_state(core.state(), SPOT, TIGHT)
    assert restored.position.stop_price == core.position.stop_price
    assert restored.progress_marker() == core.progress_marker()


def test_a_price_that_changes_nothing_durable_keeps_the_marker() -> None:
    core = _opened()
    core.on_price(Decimal("100.50"), T0 + 60_000)
    marker = core.progress_marker()
    core.on_price(Decimal("100.40"), T0 + 120_000)  # below the high: the trailing stop holds
    assert core.progress_marker() == marker


def _closing_after_stop(core: PositionCore) -> tuple[list[PlaceOrder], int]:
    """Trigger the stop; the closing sells it places (targets are cancelled first)."""
    now = T0 + 120_000
    cmds = core.on_price(Decimal("96"), now)  # below the 3% stop
    for cancel in [c for c in cmds if not isinstance(c, PlaceOrder)]:
        client_id = getattr(cancel, "client_id", None)
        if client_id is not None:
            cmds += core.on_order_update(client_id, OrderStatus.CANCELLED, Decimal(0), now)
    return [c for c in cmds if isinstance(c, PlaceOrder) and c.order.purpose == "stop"], now


def test_rejected_close_backs_off_stops_after_the_limit_and_keeps_its_price() -> None:
    """Issue 10, defect 2: a rejected closing sell was re-sent at once, forever, one durable
    commit and one order per turn, its limit walking down to one tick."""
    core = _opened()
    working, now = _closing_after_stop(core)
    assert working
    sent = [c.order for c in working]
    turns = 0
    while working and turns < 40:  # a venue that refuses every close (e.g. insufficient balance)
        turns += 1
        for close in working:
            again = core.on_order_update(close.order.client_id, OrderStatus.REJECTED, Decimal(0), now)
            assert [c for c in again if isinstance(c, PlaceOrder)] == []  # never re-sent at once
        now += 10 * 60_000  # the shell's timer, ten minutes later: past any back-off
        working = [c for c in core.on_timer(now) if isinstance(c, PlaceOrder)]
        sent += [c.order for c in working]
    assert turns <= TIGHT.max_close_rejections  # bounded: then it waits for a re-drive
    assert len(sent) <= TIGHT.max_close_rejections + 1
    assert core.close_blocked is not None
    floor = Decimal("96") * (1 - Decimal(str(TIGHT.max_close_slippage_pct)))
    assert min(o.price for o in sent if o.price is not None) >= floor
    restored = PositionCore.from_state(core.state(), SPOT, TIGHT)
    assert restored.close_blocked == core.close_blocked
    assert [c for c in restored.on_timer(now + 3_600_000) if isinstance(c, PlaceOrder)] == []


def test_close_cancelled_by_the_venue_again_and_again_backs_off_and_stops_after_the_limit() -> None:
    """Issue 10, defect 2's last case: a close the venue cancelled by itself (an expiry, a venue-side
    cancel) was re-sent at once and never counted, so such a venue got one order per turn, forever."""
    core = _opened()
    working, now = _closing_after_stop(core)
    sent = [c.order for c in working]
    turns = 0
    while working and turns < 40:
        turns += 1
        for close in working:
            again = core.on_order_update(close.order.client_id, OrderStatus.CANCELLED, Decimal(0), now)
            assert [c for c in again if isinstance(c, PlaceOrder)] == []  # never re-sent at once
        now += 10 * 60_000
        working = [c for c in core.on_timer(now) if isinstance(c, PlaceOrder)]
        sent += [c.order for c in working]
    assert turns <= TIGHT.max_close_rejections
    assert len(sent) <= TIGHT.max_close_rejections + 1
    assert core.close_blocked is not None


def test_close_accepted_and_filled_without_an_ack_breaks_the_rejection_streak() -> None:
    """Issue 10, defect 2 (the bound counts rejections *in a row*): a close the venue took and
    filled in part, reported without a separate ``OPEN`` ack, left the earlier rejection
    counted, so one later rejection blocked the position although the venue takes its closes."""
    core = _opened(TIGHT.model_copy(update={"max_close_rejections": 2}))
    (refused, taken), now = _closing_after_stop(core)  # one close per cancelled target half
    core.on_order_update(refused.order.client_id, OrderStatus.REJECTED, Decimal(0), now)
    taken_order = taken.order
    core.on_fill(  # the venue took the other close: filled in part at once, no separate ack
        Fill(
            fill_id="f2",
            client_id=taken_order.client_id,
            market=taken_order.market,
            side=taken_order.side,
            price=taken_order.price or Decimal(0),
            qty=Decimal("0.2"),
            ts_ms=now,
        )
    )
    core.on_order_update(taken_order.client_id, OrderStatus.PARTIALLY_FILLED, Decimal("0.2"), now)
    now += 10 * 60_000  # past the back-off: the refused half is tried again
    again = next(c.order for c in core.on_timer(now) if isinstance(c, PlaceOrder))
    core.on_order_update(again.client_id, OrderStatus.REJECTED, Decimal(0), now)
    assert core.close_blocked is None  # one rejection since the venue last took a close
    retried = [c for c in core.on_timer(now + 10 * 60_000) if isinstance(c, PlaceOrder)]
    assert [c.order.qty for c in retried] == [Decimal("0.5")]
