"""One strategy config over all of its markets: a core per market, each with its own indicators.

A strategy configured with ``markets = [A, B]`` runs two independent cores (``config.for_market``),
so what one market's bars teach never leaks into another's signals, and a single-market run of A
gives exactly the signals A gets here. Events are routed by market: a market's own events go to
its core; events of a market a core only watches (a reference price, a series' listings) go to
every core that watches it. The strategy actor and the in-process driver both use this class.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from actors.core.strategies import StrategyCore, build_strategy
from actors.core.strategies.offload import Offloading, Submit
from actors.domain.model import Candle, Instrument, OrderBook, Signal
from actors.domain.topology import watches
from config.models import StrategyConfig

STATE_KEY = "markets"
"""A checkpoint maps each market to its core's state under this key."""


class StrategyBook(StrategyCore[Any]):
    """The cores of one strategy, one per market it trades: itself a core (events in, signals out)."""

    def __init__(self, config: StrategyConfig) -> None:
        super().__init__(config)
        self.cores: dict[str, StrategyCore[Any]] = {
            m: build_strategy(config.for_market(m)) for m in config.markets
        }
        self._routes: dict[str, tuple[StrategyCore[Any], ...]] = {}
        self._offloading = [core for core in self.cores.values() if isinstance(core, Offloading)]

    def cores_for(self, market: str) -> tuple[StrategyCore[Any], ...]:
        """The cores that consume ``market``'s events (cached: the set of markets is fixed)."""
        route = self._routes.get(market)
        if route is None:
            own = self.cores.get(market)
            route = (
                (own,)
                if own is not None
                else tuple(
                    core for m, core in self.cores.items() if watches(self.config.for_market(m), market)
                )
            )
            self._routes[market] = route
        return route

    def warmup_bars(self, interval_ms: int, market: str | None = None) -> int:
        """The most any core consuming ``market``'s candles (any core: every market) learns first."""
        cores = self.cores.values() if market is None else self.cores_for(market)
        return max((core.warmup_bars(interval_ms) for core in cores), default=0)

    def offload_with(self, submit: Submit) -> None:
        """Cores with slow work (a model fit) run it through ``submit`` from now on."""
        for core in self._offloading:
            core.offload_with(submit)

    def waits_for(self, candle: Candle) -> list[Future[Any]]:
        """Unfinished work of the cores ``candle`` goes to that ``on_candle`` would wait for."""
        if not self._offloading:
            return []
        return [
            f
            for core in self.cores_for(candle.market)
            if isinstance(core, Offloading)
            for f in core.waits_for(candle)
        ]

    def on_candle(self, candle: Candle) -> list[Signal]:
        return [s for core in self.cores_for(candle.market) for s in core.on_candle(candle)]

    def on_book(self, book: OrderBook) -> list[Signal]:
        return [s for core in self.cores_for(book.market) for s in core.on_book(book)]

    def on_instrument(self, instrument: Instrument) -> list[Signal]:
        return [s for core in self.cores_for(instrument.market_id) for s in core.on_instrument(instrument)]

    def state(self) -> dict[str, Any]:
        """Each market's core state, so a market added to the config later starts fresh."""
        return {STATE_KEY: {m: core.state() for m, core in self.cores.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`; a checkpoint from before markets were a list is the first market's."""
        per_market = state.get(STATE_KEY)
        if not isinstance(per_market, dict):
            per_market = {self.config.markets[0]: state}
        for market, core_state in per_market.items():
            core = self.cores.get(market)
            if core is not None:  # a market dropped from the config is forgotten
                core.restore(core_state)
