"""Pure core of the portfolio/risk actor: entry signals in, gated and sized entry plans out.

No I/O and no clock: the shell passes ``now_ms`` and reports opens, closes and marks back,
so replaying the same events yields the same decisions and the same position ids.

Decisions worth knowing (each is also documented where it is made):

* Every gate runs on every entry signal and reports its result; the first failing one, in
  the fixed order of :class:`Gate`, is ``rejected_by``. ``passed=None`` means skipped.
* An approved entry reserves its slot at once (a *pending* holding): a second signal for the
  same market, or one that would breach a cap, is rejected before the first has filled.
  The shell releases the reservation with :meth:`PortfolioCore.on_entry_cancelled` or
  confirms it with :meth:`PortfolioCore.on_position_opened`.
* Allocation and cash reserve *size down* to the room left; they reject only when that
  room holds no tradable size (below ``instrument.min_size`` or one lot).
* Fractional Kelly can only shrink a trade: the risk fraction is the smaller of
  ``risk_per_trade`` and ``kelly_fraction * f*``; a non-positive Kelly edge rejects.
* An unknown listing time (``instrument.created_ms is None``) passes the market-age gate.
* A signal is acted on once (gate ``replayed``): per strategy and market the newest entry
  signal time acted on is checkpointed, and any signal at or before it is refused, so a signal
  replayed after a strategy restart cannot reopen a closed position under the same id. The
  memory is bounded by ``signal_replay_horizon_h``: a pair older than that behind the
  strategy's newest entry is forgotten and its time becomes the strategy's floor, below which
  every signal is refused (a strategy's signals arrive in time order, so only a replay is that old).
* Exit signals (``Side.SELL``) are never gated or sized here: a risk rule must never keep a
  position from being closed. They come back as ``DecisionKind.EXIT`` naming the position.

Pre-trade limits (``PortfolioConfig.max_*``), each a gate; when one bites it is named in
``Decision.limits``, logged, and (as a rejection) counted by the shell under its gate name:

* ``daily_loss`` (:mod:`actors.core.portfolio_daily_loss`): the UTC day's P&L is equity now
  minus equity at the day's first event (realised P&L since then plus the change in unrealised
  marks: a loss carried over from yesterday is not counted twice). When the loss reaches
  ``max_daily_loss_fraction`` of the day's starting equity, entries are rejected until the next
  UTC day (``now_ms // DAY_MS``); exits never are. The day rolls over on any event carrying
  ``now_ms`` (``evaluate``, and ``on_equity`` / ``on_position_closed`` when given one). Each
  clock keeps its own day (the clock of a signal is its market's venue): live, every venue runs
  on the wall clock and there is one day book, but a paper replay of Binance candles of 2024
  beside a Polymarket day of 2026 runs on two clocks, and one day shared between them would
  never roll over for the earlier one. A loss counts on every clock's day (equity is one); a
  halt ends with the day of the clock it is on. The limit is checked only on fresh marks: right
  after a close (which clears unrealised P&L) with other positions still open, the check waits
  for the shell's next :meth:`PortfolioCore.on_equity`.
* ``order_rate``: at most ``max_orders_per_s`` entries approved in any rolling second of data
  time (``(now_ms - 1000, now_ms]``); further entry signals in that second are rejected.
* ``open_orders``: the core does not see venue orders, so the shell reports them
  (:meth:`PortfolioCore.on_open_orders`, the venue's open orders per market); an entry into a
  market already holding ``max_open_orders_per_market`` is rejected. Pending entries of this
  core need no counting: ``one_per_market`` already allows one. Counts are observations, not
  state: they are not checkpointed, the shell reports them again after a restart.
* ``order_notional``: an entry is *sized down* to ``max_order_notional`` (quote currency), like
  the allocation and reserve caps, and rejected only when that holds no tradable size.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from actors.core.correlation import RollingCorrelation, is_bar_close
from actors.core.portfolio_daily_loss import DailyLossBook
from actors.core.portfolio_decisions import (
    PRE_TRADE_LIMITS,
    Decision,
    DecisionKind,
    EntryPlan,
    Gate,
    GateResult,
    Holding,
    fmt,
    pct,
)
from actors.core.sizing import RiskBook, floor_context, size_entry
from actors.domain.model import (
    HOUR_MS,
    ONE,
    ZERO,
    Candle,
    Instrument,
    OrderBook,
    Signal,
    deterministic_id,
    to_decimal,
)
from actors.domain.names import market_venue
from config.models import ExitConfig, PortfolioConfig, StrategyBase

log = logging.getLogger(__name__)

STATE_VERSION = 1
ORDER_RATE_WINDOW_MS = 1000

# Verdicts that never vary, built once (results are frozen models; every entry signal reports them).
_NEW_SIGNAL = GateResult(gate=Gate.REPLAYED, passed=True, detail="a new signal")
_AGE_UNKNOWN = GateResult(gate=Gate.MARKET_AGE, passed=True, detail="listing time unknown")
_AROUND_THE_CLOCK = GateResult(gate=Gate.PEAK_HOURS, passed=True, detail="strategy trades around the clock")
_NO_BOOK = GateResult(gate=Gate.LIQUIDITY, passed=None, detail="no order book: skipped")
_VERDICTS: dict[tuple[Gate, bool | None, str], GateResult] = {}
_MAX_VERDICTS = 4096


def _verdict(*, gate: Gate, passed: bool | None, detail: str) -> GateResult:
    """``GateResult(...)``, one frozen object per distinct verdict: most gates say the same thing
    on signal after signal (no open orders, one position, ...), and a model costs microseconds.
    Bounded: the memo starts over past :data:`_MAX_VERDICTS`."""
    key = (gate, passed, detail)
    found = _VERDICTS.get(key)
    if found is None:
        if len(_VERDICTS) >= _MAX_VERDICTS:
            _VERDICTS.clear()
        found = _VERDICTS[key] = GateResult(gate=gate, passed=passed, detail=detail)
    return found


class PortfolioCore:
    """Risk book and entry gates of the portfolio actor; events in, decisions out.

    Equity = ``initial_capital`` + realised P&L + unrealised P&L (the latter from the last
    :meth:`on_equity` mark); entries are sized on :attr:`sizing_equity`, which leaves open
    gains out. Committed = notional of open positions and pending entries.
    Cash = ``initial_capital`` + realised P&L - committed.
    """

    def __init__(
        self,
        portfolio: PortfolioConfig,
        exits: ExitConfig,
        strategies: Sequence[StrategyBase],
    ) -> None:
        self.portfolio = portfolio
        self.exits = exits
        self._strategies: dict[str, StrategyBase] = {}
        for strategy in strategies:
            if strategy.name in self._strategies:
                raise ValueError(f"duplicate strategy name {strategy.name!r}")
            self._strategies[strategy.name] = strategy
        self._holdings: dict[str, Holding] = {}
        self._realized = ZERO
        self._unrealized = ZERO
        self._daily = DailyLossBook()
        """The daily-loss limit's day book per clock (a market's venue)."""
        self._marks_stale = False
        self._recent_entries: deque[int] = deque()
        self._open_orders: dict[str, int] = {}
        self._acted_until: dict[str, int] = {}
        """``strategy|market`` -> time of the newest entry signal acted on. A strategy's signals of
        one market arrive in time order, so one number per pair spends every signal up to it:
        a signal replayed after a restart can never reopen the position it already opened.
        Bounded: a pair is forgotten once its time is ``signal_replay_horizon_h`` older than the
        strategy's newest entry, and ``_acted_floor`` then spends everything up to it."""
        self._acted_floor: dict[str, int] = {}
        """strategy -> newest signal time among its forgotten pairs: any entry signal of the
        strategy at or before it is refused (it is a horizon older than an entry already made, so
        only a replay can bring it)."""
        self._pairs: dict[str, str] = {}
        """Binary market id -> its condition (the Up/Down pair), from the instruments evaluated."""
        self.correlations = RollingCorrelation(portfolio.correlation_window_bars)
        """Rolling return correlation of every market the feeds carry (observations, not state)."""

    # ------------------------------------------------------------------ books

    @property
    def initial_capital(self) -> Decimal:
        return self.portfolio.initial_capital

    @property
    def realized_pnl(self) -> Decimal:
        return self._realized

    @property
    def unrealized_pnl(self) -> Decimal:
        return self._unrealized

    @property
    def equity(self) -> Decimal:
        return self.initial_capital + self._realized + self._unrealized

    @property
    def booked_equity(self) -> Decimal:
        """Capital plus realised P&L of closed positions: money the book holds, marks aside."""
        return self.initial_capital + self._realized

    @property
    def sizing_equity(self) -> Decimal:
        """What entries are sized on: equity with unrealised losses, without unrealised gains.

        An open gain is not money yet (a binary at 0.95 can still settle at 0), so sizing on it
        would grow every later entry's risk on the strength of a mark. An open loss already
        shrinks what the book could pay out, so it counts. Hence ``min(booked, marked)``.
        """
        return min(self.equity, self.booked_equity)

    @property
    def committed_total(self) -> Decimal:
        return sum((h.notional for h in self._holdings.values()), ZERO)

    @property
    def cash(self) -> Decimal:
        """Capital not tied up in positions or pending entries (marks do not change it)."""
        return self.initial_capital + self._realized - self.committed_total

    def committed(self, strategy: str) -> Decimal:
        """Notional a strategy has tied up, pending entries included."""
        return sum((h.notional for h in self._holdings.values() if h.strategy == strategy), ZERO)

    @property
    def committed_by_strategy(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for h in self._holdings.values():
            out[h.strategy] = out.get(h.strategy, ZERO) + h.notional
        return out

    @property
    def holdings(self) -> tuple[Holding, ...]:
        return tuple(self._holdings.values())

    @property
    def day_pnl(self) -> Decimal:
        """Equity now minus equity at the current UTC day's first event (0 before any timed event)."""
        return self._daily.pnl(self.equity)

    @property
    def daily_loss_halted(self) -> bool:
        """Entries are halted for the rest of this UTC day by ``max_daily_loss_fraction``."""
        return self._daily.halted

    def daily_loss_status(self) -> dict[str, Any]:
        """The daily-loss book for heartbeats and alerts (money as strings, exact)."""
        return self._daily.status(self.equity, self.portfolio.max_daily_loss_fraction)

    def open_orders(self, market: str) -> int:
        """Open venue orders in ``market`` as last reported by :meth:`on_open_orders`."""
        return self._open_orders.get(market, 0)

    @property
    def risk_fraction(self) -> Decimal:
        """Share of equity risked per trade: ``risk_per_trade``, lowered by fractional Kelly if set."""
        base = to_decimal(self.portfolio.risk_per_trade)
        kelly = self.kelly_risk_fraction()
        return base if kelly is None else min(base, kelly)

    def exits_for(self, config: StrategyBase | None) -> ExitConfig:
        """The exit plan a strategy's positions run: its own, or the portfolio-wide one."""
        own = getattr(config, "exits", None)
        return own if isinstance(own, ExitConfig) else self.exits

    def kelly_risk_fraction(self) -> Decimal | None:
        """``kelly_fraction * f*`` with f* = (b*p - q) / b; ``None`` when Kelly is off.

        b is the exit plan's payoff ratio: the blended target (``target_one_fraction`` sold at
        target one, the rest at target two) over the stop distance. Trailing and time exits
        are ignored. f* is the share of equity to *lose* if the stop is hit, which is exactly
        what ``risk_per_trade`` bounds, so the two combine by taking the smaller.
        """
        p, x = self.portfolio, self.exits
        if p.kelly_fraction is None:
            return None
        share = to_decimal(x.target_one_fraction)
        target = share * to_decimal(x.target_one_pct) + (ONE - share) * to_decimal(x.target_two_pct)
        win = to_decimal(p.kelly_win_rate)
        with floor_context():
            b = target / to_decimal(x.stop_pct)
            f = (b * win - (ONE - win)) / b
            return to_decimal(p.kelly_fraction) * f

    # ------------------------------------------------------------------ events

    def evaluate(
        self, signal: Signal, instrument: Instrument, book: OrderBook | None, now_ms: int
    ) -> Decision:
        """Gate and size one signal; an approved entry is reserved as a pending holding at once."""
        if signal.market != instrument.market_id:
            raise ValueError(
                f"signal for {signal.market} evaluated against instrument {instrument.market_id}"
            )
        if book is not None and book.market != instrument.market_id:
            raise ValueError(f"book of {book.market} evaluated for {instrument.market_id}")
        clock = market_venue(signal.market)
        self._roll_day(now_ms, clock)
        if not signal.is_entry:
            return self._exit_decision(signal)
        self._check_daily_loss(now_ms)

        config = self._strategies.get(signal.strategy)
        position_id = deterministic_id("pos", signal.strategy, signal.market, signal.ts_ms)
        group = instrument.correlation_group or instrument.market_id
        pair = instrument.condition_id or ""
        if pair:
            self._pairs[instrument.market_id] = pair
        sizing = size_entry(
            signal,
            instrument,
            book,
            config,
            RiskBook(
                portfolio=self.portfolio,
                exits=self.exits_for(config),
                equity=self.sizing_equity,
                risk_fraction=self.risk_fraction,
                committed_total=self.committed_total,
                cash=self.cash,
                committed_by_strategy=ZERO if config is None else self.committed(config.name),
            ),
        )
        gates = (
            self._gate_strategy(signal.strategy, config),
            self._gate_replayed(signal),
            self._daily.gate(clock, self.equity, self.portfolio.max_daily_loss_fraction),
            self._gate_one_per_market(signal, position_id, pair),
            self._gate_max_concurrent(),
            self._gate_correlation(signal.market, group),
            self._gate_open_orders(signal.market),
            self._gate_order_rate(now_ms),
            self._gate_market_age(instrument, config, now_ms),
            self._gate_peak_hours(config, now_ms),
            self._gate_liquidity(book, config),
            *sizing.gates,
        )
        failed = next((g for g in gates if g.passed is False), None)
        limits = tuple(g.gate for g in gates if g.gate in PRE_TRADE_LIMITS and g.passed is False)
        if failed is not None:
            decision = Decision(
                signal=signal, approved=False, gates=gates, rejected_by=failed.gate, limits=limits
            )
            self._log_limits(decision)
            return decision
        if sizing.notional_bound:
            limits = (Gate.ORDER_NOTIONAL,)

        notional = sizing.qty * sizing.entry
        plan = EntryPlan(
            position_id=position_id,
            strategy=signal.strategy,
            market=signal.market,
            correlation_group=group,
            qty=sizing.qty,
            limit_price=sizing.entry,
            stop_price=sizing.stop,
            notional=notional,
            risk_amount=sizing.qty * (sizing.entry - sizing.stop),
            strength=signal.strength,
            signal_ts_ms=signal.ts_ms,
            decided_ms=now_ms,
        )
        self._holdings[position_id] = Holding(
            position_id=position_id,
            strategy=signal.strategy,
            market=signal.market,
            notional=notional,
            correlation_group=group,
            pending=True,
            pair=pair,
        )
        self._recent_entries.append(now_ms)
        self._spend(signal)
        decision = Decision(signal=signal, approved=True, gates=gates, plan=plan, limits=limits)
        self._log_limits(decision)
        return decision

    def on_position_opened(
        self,
        position_id: str,
        strategy: str,
        market: str,
        notional: Decimal,
        correlation_group: str,
        *,
        entry_working: bool = False,
    ) -> None:
        """An entry filled (wholly or in part): record its actual cost; idempotent upsert.

        Call again with the grown notional on further fills. Also how a restarted shell
        re-registers positions it knows from its ledger but this core does not. While the
        entry still works (``entry_working``) the planned notional stays reserved: the rest
        may still fill, so it must not be lent to another entry.
        """
        if notional < 0:
            raise ValueError(f"notional must be >= 0, got {notional}")
        existing = self._holdings.get(position_id)
        if entry_working and existing is not None:
            notional = max(notional, existing.notional)
        self._holdings[position_id] = Holding(
            position_id=position_id,
            strategy=strategy,
            market=market,
            notional=notional,
            correlation_group=correlation_group or market,
            pending=False,
            pair=existing.pair if existing is not None else self._pairs.get(market, ""),
        )

    def on_entry_cancelled(self, position_id: str) -> bool:
        """Release a pending entry that never filled; ``False`` if it was not pending.

        A partly filled entry is a position: report it with :meth:`on_position_opened` instead.
        """
        holding = self._holdings.get(position_id)
        if holding is None or not holding.pending:
            return False
        del self._holdings[position_id]
        return True

    def on_position_closed(self, position_id: str, realized_pnl: Decimal, now_ms: int | None = None) -> bool:
        """Book a closed position's realised P&L (fees included); ``False`` if unknown.

        Idempotent: a replayed close of a position already removed changes nothing. The
        last mark's unrealised P&L is cleared, since part of it has just become realised;
        the shell follows a close with a fresh :meth:`on_equity`. ``now_ms`` (optional) lets
        the daily-loss book roll over to a new UTC day first.
        """
        if now_ms is not None:
            holding = self._holdings.get(position_id)
            self._roll_day(now_ms, self._daily.clock if holding is None else market_venue(holding.market))
        if self._holdings.pop(position_id, None) is None:
            return False
        self._realized += realized_pnl
        self._unrealized = ZERO
        # with nothing else held, zero unrealised P&L is exact; otherwise wait for the next mark
        self._marks_stale = any(not h.pending for h in self._holdings.values())
        self._check_daily_loss(now_ms)
        return True

    def on_equity(self, equity: Decimal, now_ms: int | None = None) -> None:
        """Mark-to-market equity from the shell: whatever exceeds booked capital is unrealised P&L.

        With ``now_ms`` the daily-loss book first rolls over to a new UTC day (the day then
        starts from the equity last seen, before this mark), and the daily-loss limit is
        checked against this mark.
        """
        if now_ms is not None:
            self._roll_day(now_ms, self._daily.clock)
        self._unrealized = equity - (self.initial_capital + self._realized)
        self._marks_stale = False
        self._check_daily_loss(now_ms)

    def on_open_orders(self, counts: Mapping[str, int], *, venue: str | None = None) -> None:
        """Open venue orders per market id, as the shell last saw them (the ``open_orders`` limit).

        With ``venue``, ``counts`` is that venue's whole picture: its markets missing from it have
        none. Without, ``counts`` updates just the markets it names.
        """
        if venue is not None:
            prefix = f"{venue}:"
            for market in [m for m in self._open_orders if m.startswith(prefix)]:
                del self._open_orders[market]
        for market, count in counts.items():
            if count < 0:
                raise ValueError(f"open order count must be >= 0, got {count} for {market}")
            if count:
                self._open_orders[market] = count
            else:
                self._open_orders.pop(market, None)

    # ------------------------------------------------------------------ daily loss

    def _roll_day(self, now_ms: int, clock: str) -> None:
        """Start a new UTC day's book on ``clock`` at its first event of the day, from equity now."""
        self._daily.roll(now_ms, clock, self.equity)

    def _check_daily_loss(self, now_ms: int | None) -> None:
        """The daily-loss limit, checked on fresh marks only."""
        if not self._marks_stale:
            self._daily.check(self.equity, self.portfolio.max_daily_loss_fraction, now_ms)

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot; Decimals as strings so the restore is exact.

        Configuration is not part of the state: it comes from the settings on restart.
        """
        return {
            "version": STATE_VERSION,
            "realized_pnl": str(self._realized),
            "unrealized_pnl": str(self._unrealized),
            "holdings": [h.model_dump(mode="json") for h in self._holdings.values()],
            **self._daily.state(),
            "marks_stale": self._marks_stale,
            "recent_entries_ms": list(self._recent_entries),
            "acted_until_ms": dict(self._acted_until),
            "acted_floor_ms": dict(self._acted_floor),
        }

    @classmethod
    def from_state(
        cls,
        portfolio: PortfolioConfig,
        exits: ExitConfig,
        strategies: Sequence[StrategyBase],
        state: dict[str, Any],
    ) -> PortfolioCore:
        """Rebuild exactly what :meth:`state` captured."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported portfolio state version {state.get('version')!r}")
        core = cls(portfolio, exits, strategies)
        core._realized = Decimal(state["realized_pnl"])
        core._unrealized = Decimal(state["unrealized_pnl"])
        for raw in state["holdings"]:
            holding = Holding.model_validate(raw)
            core._holdings[holding.position_id] = holding
        # the pre-trade limits' state came later: a snapshot without it starts a fresh day book
        core._daily = DailyLossBook.from_state(state)
        core._marks_stale = bool(state.get("marks_stale", False))
        core._recent_entries = deque(int(t) for t in state.get("recent_entries_ms", ()))
        core._acted_until = {str(k): int(v) for k, v in state.get("acted_until_ms", {}).items()}
        core._acted_floor = {str(k): int(v) for k, v in state.get("acted_floor_ms", {}).items()}
        return core

    # ------------------------------------------------------------------ gates

    def _exit_decision(self, signal: Signal) -> Decision:
        """Exits pass straight through, naming the strategy's position (open or pending) in the market.

        A pending one is named too: the shell then cancels the entry rather than sells. An exit
        older than the newest entry the strategy acted on in that market is a replay (a strategy
        restarted from an older checkpoint): the position it meant is gone and the one there now
        was opened after it, so it names none (refused by the ``replayed`` gate).
        """
        acted = self._acted_until.get(_signal_key(signal))
        if acted is not None and signal.ts_ms < acted:
            stale = _verdict(
                gate=Gate.REPLAYED,
                passed=False,
                detail=f"exit signal of {signal.ts_ms} predates the entry acted on at {acted}",
            )
            return Decision(
                signal=signal,
                kind=DecisionKind.EXIT,
                approved=False,
                gates=(stale,),
                rejected_by=Gate.REPLAYED,
            )
        position_id = next(
            (
                h.position_id
                for h in self._holdings.values()
                if h.market == signal.market and h.strategy == signal.strategy
            ),
            None,
        )
        return Decision(signal=signal, kind=DecisionKind.EXIT, approved=False, exit_position_id=position_id)

    def _gate_strategy(self, name: str, config: StrategyBase | None) -> GateResult:
        if config is None:
            return _verdict(gate=Gate.STRATEGY, passed=False, detail=f"unknown strategy {name!r}")
        if not config.enabled:
            return _verdict(gate=Gate.STRATEGY, passed=False, detail=f"strategy {name!r} is disabled")
        return _verdict(gate=Gate.STRATEGY, passed=True, detail=f"strategy {name!r} enabled")

    def _gate_open_orders(self, market: str) -> GateResult:
        count, limit = self.open_orders(market), self.portfolio.max_open_orders_per_market
        return _verdict(
            gate=Gate.OPEN_ORDERS,
            passed=count < limit,
            detail=f"{count} open orders in {market}, max {limit}",
        )

    def _gate_order_rate(self, now_ms: int) -> GateResult:
        start = now_ms - ORDER_RATE_WINDOW_MS
        while self._recent_entries and self._recent_entries[0] <= start:
            self._recent_entries.popleft()
        count = sum(1 for t in self._recent_entries if start < t <= now_ms)
        limit = self.portfolio.max_orders_per_s
        return _verdict(
            gate=Gate.ORDER_RATE,
            passed=count < limit,
            detail=f"{count} entries approved in the last second, max {limit}",
        )

    def _log_limits(self, decision: Decision) -> None:
        """One log line per pre-trade limit that bit (the daily-loss halt is logged when it trips)."""
        signal = decision.signal
        for gate in decision.limits:
            detail = decision.gate(gate).detail
            if gate is Gate.DAILY_LOSS:
                log.info("entry of %s in %s refused: %s", signal.strategy, signal.market, detail)
            elif decision.approved:
                log.info(
                    "pre-trade limit %s sized %s's entry in %s: %s",
                    gate,
                    signal.strategy,
                    signal.market,
                    detail,
                )
            else:
                log.warning(
                    "pre-trade limit %s rejected %s's entry in %s: %s",
                    gate,
                    signal.strategy,
                    signal.market,
                    detail,
                )

    def _gate_replayed(self, signal: Signal) -> GateResult:
        acted = self._acted_until.get(_signal_key(signal))
        if acted is not None and signal.ts_ms <= acted:
            return _verdict(
                gate=Gate.REPLAYED,
                passed=False,
                detail=f"signal of {signal.ts_ms} already spent (acted on entries up to {acted})",
            )
        floor = self._acted_floor.get(signal.strategy)
        if floor is not None and signal.ts_ms <= floor:
            return _verdict(
                gate=Gate.REPLAYED,
                passed=False,
                detail=f"signal of {signal.ts_ms} already spent (older than the replay horizon: "
                f"{signal.strategy}'s signals up to {floor} are spent)",
            )
        return _NEW_SIGNAL

    def _spend(self, signal: Signal) -> None:
        """Mark an approved entry signal spent, and forget the strategy's pairs older than the
        replay horizon (their times raise the strategy's floor, so they stay spent)."""
        self._acted_until[_signal_key(signal)] = signal.ts_ms
        prefix = f"{signal.strategy}|"
        mine = {k: t for k, t in self._acted_until.items() if k.startswith(prefix)}
        cutoff = max(mine.values()) - int(self.portfolio.signal_replay_horizon_h * HOUR_MS)
        for key, ts_ms in mine.items():
            if ts_ms < cutoff:
                del self._acted_until[key]
                self._acted_floor[signal.strategy] = max(self._acted_floor.get(signal.strategy, ts_ms), ts_ms)

    def _gate_one_per_market(self, signal: Signal, position_id: str, pair: str) -> GateResult:
        """One open position per market (per strategy with ``position_scope = "strategy"``).

        The Up and Down tokens of one binary window are one market here whatever the scope:
        holding both sides of a window is a sure loss, whichever strategies would hold them.
        """
        market = signal.market
        if position_id in self._holdings:
            return _verdict(
                gate=Gate.ONE_PER_MARKET,
                passed=False,
                detail=f"duplicate signal: position {position_id} already recorded",
            )
        per_strategy = self.portfolio.position_scope == "strategy"
        for h in self._holdings.values():
            what = "an entry is pending" if h.pending else "a position is open"
            if pair and h.pair == pair and h.market != market:
                return _verdict(
                    gate=Gate.ONE_PER_MARKET,
                    passed=False,
                    detail=f"{what} on the other side of this window ({h.market}, {h.position_id}, "
                    f"{h.strategy}): Up and Down of condition {pair} are one market",
                )
            if (h.market == market or (pair and h.pair == pair)) and not (
                per_strategy and h.strategy != signal.strategy
            ):
                return _verdict(
                    gate=Gate.ONE_PER_MARKET,
                    passed=False,
                    detail=f"{what} in {market} ({h.position_id}, {h.strategy})",
                )
        scope = f" for {signal.strategy}" if per_strategy else ""
        return _verdict(gate=Gate.ONE_PER_MARKET, passed=True, detail=f"no position in {market}{scope}")

    def _gate_max_concurrent(self) -> GateResult:
        count, limit = len(self._holdings), self.portfolio.max_concurrent_positions
        return _verdict(
            gate=Gate.MAX_CONCURRENT,
            passed=count < limit,
            detail=f"{count} positions and pending entries, max {limit}",
        )

    def on_candle(self, candle: Candle) -> None:
        """Any candle a feed carries; bar closes feed the rolling correlation."""
        if is_bar_close(candle):
            self.on_close(candle.market, candle.ts_ms, candle.close)

    def on_close(self, market: str, ts_ms: int, close: float) -> None:
        """A market's closed bar, for the rolling correlation (every market the feeds carry)."""
        self.correlations.on_close(market, ts_ms, close)

    def _moves_with(self, market: str, group: str, held: Holding) -> tuple[bool, str]:
        """Does ``held`` count in the new position's correlation group, and why."""
        if held.market == market:
            return True, f"{held.market} (same market)"
        if self.portfolio.correlation == "measured":
            rho = self.correlations.correlation(market, held.market)
            if rho is not None:
                return rho > self.portfolio.correlation_threshold, f"{held.market} rho {rho:.2f}"
        return held.correlation_group == group, f"{held.market} (group {held.correlation_group})"

    def _gate_correlation(self, market: str, group: str) -> GateResult:
        together = [
            why
            for h in self._holdings.values()
            for moves, why in [self._moves_with(market, group, h)]
            if moves
        ]
        limit = self.portfolio.max_per_correlation_group
        if self.portfolio.correlation == "measured":
            rule = f"move with {market} (rho > {self.portfolio.correlation_threshold}, else group {group!r})"
        else:
            rule = f"in correlation group {group!r}"
        listed = f": {', '.join(together)}" if together else ""
        return _verdict(
            gate=Gate.CORRELATION,
            passed=len(together) < limit,
            detail=f"{len(together)} open {rule}, max {limit}{listed}",
        )

    def _gate_market_age(
        self, instrument: Instrument, config: StrategyBase | None, now_ms: int
    ) -> GateResult:
        """Young markets are thin and erratic; the strategy may override the portfolio's minimum.

        An unknown listing time passes: the venue simply did not say (Binance pairs), and a
        gate that cannot be evaluated should not silently block a whole venue.
        """
        hours = self.portfolio.min_market_age_h
        if config is not None and config.min_market_age_h is not None:
            hours = config.min_market_age_h
        minimum = to_decimal(hours)
        age_ms = instrument.age_ms(now_ms)
        if age_ms is None:
            return _AGE_UNKNOWN
        age_h = Decimal(age_ms) / HOUR_MS
        passed = age_ms >= minimum * HOUR_MS
        op = ">=" if passed else "<"
        return _verdict(
            gate=Gate.MARKET_AGE, passed=passed, detail=f"market age {fmt(age_h)}h {op} {fmt(minimum)}h"
        )

    def _gate_peak_hours(self, config: StrategyBase | None, now_ms: int) -> GateResult:
        start, end = self.portfolio.peak_hours_utc
        window = f"[{start:02d}:00, {end:02d}:00) UTC"
        if config is None or not config.peak_hours_only:
            return _AROUND_THE_CLOCK
        hour = (now_ms // HOUR_MS) % 24
        passed = start <= hour < end
        where = "inside" if passed else "outside"
        return _verdict(gate=Gate.PEAK_HOURS, passed=passed, detail=f"hour {hour:02d} UTC {where} {window}")

    def _gate_liquidity(self, book: OrderBook | None, config: StrategyBase | None) -> GateResult:
        if book is None:
            return _NO_BOOK
        p = self.portfolio
        spread_limit = p.max_spread_fraction
        if config is not None and config.max_spread_fraction is not None:
            spread_limit = config.max_spread_fraction
        max_spread, levels = to_decimal(spread_limit), p.book_depth_levels
        depth = book.depth(levels)
        depth_ok = depth >= p.min_book_depth
        depth_text = f"depth {fmt(depth)} {'>=' if depth_ok else '<'} {fmt(p.min_book_depth)} (top {levels})"
        spread = book.spread_fraction
        if spread is None:
            return _verdict(
                gate=Gate.LIQUIDITY, passed=False, detail=f"one-sided or empty book; {depth_text}"
            )
        spread_ok = spread <= max_spread
        spread_text = f"spread {pct(spread)} of mid {'<=' if spread_ok else '>'} {pct(max_spread)}"
        return _verdict(
            gate=Gate.LIQUIDITY, passed=spread_ok and depth_ok, detail=f"{spread_text}; {depth_text}"
        )


def _signal_key(signal: Signal) -> str:
    return f"{signal.strategy}|{signal.market}"
