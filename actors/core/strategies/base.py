"""The contract every strategy core honours, in backtest, paper and live alike."""

from __future__ import annotations

from abc import ABC
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from actors.domain.model import Candle, Instrument, OrderBook, Signal

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class StrategyCore(ABC, Generic[ConfigT]):
    """Events in, signals out; no I/O, no clock, no unseeded randomness.

    ``state()`` returns JSON-serialisable data from which ``restore()`` rebuilds the core
    exactly, so a restarted strategy actor carries on with the same indicator values.
    """

    kind: str = ""

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return str(getattr(self.config, "name", self.kind))

    def warmup_bars(self, interval_ms: int) -> int:  # noqa: ARG002
        """Closed candles of ``interval_ms`` this core learns from before its first live one.

        The longest lookback of its indicators (a model: its training window), so that every
        indicator is defined on the last history bar. A live start delivers that many bars of
        the venue's history as warm-up (``actors.data.live``), as Freqtrade's startup candles;
        0: nothing to learn.
        """
        return 0

    def on_candle(self, candle: Candle) -> list[Signal]:  # noqa: ARG002
        """A closed bar of a market this strategy watches."""
        return []

    def on_book(self, book: OrderBook) -> list[Signal]:  # noqa: ARG002
        """A new order-book snapshot of a market this strategy watches."""
        return []

    def on_instrument(self, instrument: Instrument) -> list[Signal]:  # noqa: ARG002
        """A market became known (Polymarket lists new 5-minute markets all day)."""
        return []

    def state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot of everything the core learned so far."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild from ``state()``; the inverse, exactly."""
