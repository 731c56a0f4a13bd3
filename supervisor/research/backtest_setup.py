"""A backtest's inputs: which strategies run, with which exits, on which markets and candle files.

The rules (default strategy set, single-strategy allocation, exit modes, ``--data``) are described in
:mod:`supervisor.research.backtest`; this module applies them before a run starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from actors.data.candles import CandleTable, clean_table, load_table
from actors.data.replay import binance_instrument
from actors.domain.model import Instrument
from config.models import Settings, StrategyConfig

ExitsMode = Literal["signal", "managed"]
EngineMode = Literal["auto", "fast", "driver"]
Progress = Callable[[int, int], None]
DataSpec = tuple[str | None, Path]

POLYMARKET_KINDS = frozenset({"polymarket_lag"})
"""Strategy kinds that run on the Polymarket day rather than on candles."""


class BacktestError(ValueError):
    """A backtest that cannot run as asked (unknown strategy, mixed data kinds, unusable data)."""


# --------------------------------------------------------------------------- settings for a run


def revalidated(settings: Settings) -> Settings:
    """Settings rebuilt through validation (model_copy does not validate; the run must not start wrong)."""
    return Settings.model_validate(settings.model_dump())


def is_polymarket(cfg: StrategyConfig) -> bool:
    return cfg.kind in POLYMARKET_KINDS


def select_strategies(settings: Settings, names: Sequence[str] = ()) -> tuple[Settings, list[str]]:
    """Settings holding only the strategies of the run (enabled, in config order), and notes on the choice.

    See the module docstring for the rules (default set, data kinds, single-strategy allocation).
    """
    known = {s.name: s for s in settings.strategies}
    notes: list[str] = []
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise BacktestError(
            f"unknown strateg{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
            f"the config has: {', '.join(known) or 'none'}"
        )
    if wanted:
        chosen = [s for s in settings.strategies if s.name in wanted]
        kinds = {is_polymarket(s) for s in chosen}
        if len(kinds) > 1:
            raise BacktestError(
                "polymarket_lag runs on the Polymarket day and candle strategies on Binance candles: "
                "backtest them separately"
            )
    else:
        chosen = [s for s in settings.strategies if s.enabled]
        if not chosen:
            raise BacktestError("the config enables no strategy; name one with --strategy")
        candles = [s for s in chosen if not is_polymarket(s)]
        if candles and len(candles) < len(chosen):
            left_out = [s.name for s in chosen if is_polymarket(s)]
            notes.append(
                f"Left out {', '.join(left_out)}: it needs the Polymarket day, not candles "
                f"(run it alone with --strategy {left_out[0]})."
            )
            chosen = candles
    chosen = [s if s.enabled else s.model_copy(update={"enabled": True}) for s in chosen]
    if len(wanted) == 1:
        share = round(1.0 - settings.portfolio.cash_reserve, 12)
        notes.append(
            f"Single-strategy run: {chosen[0].name} gets {share:.0%} of equity (1 - cash reserve) instead "
            f"of its configured {chosen[0].allocation:.0%}; risk per trade and notional caps still apply."
        )
        chosen = [chosen[0].model_copy(update={"allocation": share})]
    return revalidated(settings.model_copy(update={"strategies": chosen})), notes


def apply_exit_mode(settings: Settings, mode: ExitsMode | None) -> Settings:
    """``managed`` on the top-level exits and every strategy's own exits (``None`` keeps the config)."""
    if mode is None:
        return settings
    managed = mode == "managed"
    strategies = [
        s
        if s.exits is None
        else s.model_copy(update={"exits": s.exits.model_copy(update={"managed": managed})})
        for s in settings.strategies
    ]
    exits = settings.exits.model_copy(update={"managed": managed})
    return revalidated(settings.model_copy(update={"exits": exits, "strategies": strategies}))


def exit_modes(settings: Settings) -> dict[str, bool]:
    """Per strategy: does the exit state machine run (``managed``) for its positions?"""
    return {s.name: (s.exits or settings.exits).managed for s in settings.strategies}


# --------------------------------------------------------------------------- data


def load_candles(path: Path) -> CandleTable:
    """A candle file ready to backtest: CSV/JSON cleaned on load, Parquet as stored (see module doc)."""
    if not path.exists():
        raise BacktestError(f"{path}: no such data file")
    try:
        table = load_table(path)
    except (ValueError, KeyError, OSError) as exc:
        raise BacktestError(f"{path}: {exc}") from exc
    if path.suffix.lower() != ".parquet":
        table, _report = clean_table(table)
    if len(table) < 2:
        raise BacktestError(f"{path}: {len(table)} bar(s), too few to backtest")
    return table


def candle_markets(settings: Settings) -> list[str]:
    """Every market the strategies of a candle run trade, in the order they list them."""
    return list(dict.fromkeys(m for s in settings.strategies for m in s.markets))


def parse_data_spec(text: str) -> DataSpec:
    """``MARKET=FILE`` (a market id is venue:symbol, e.g. ``binance:ETH/USDT=eth.csv.gz``) or ``FILE``."""
    market, sep, path = text.partition("=")
    if sep and ":" in market and path.strip():
        return market.strip(), Path(path.strip())
    return None, Path(text)


@dataclass(frozen=True)
class CandleRun:
    """A candle run's settings (strategies restricted to the run's markets), each market's file, notes."""

    settings: Settings
    files: dict[str, Path]
    notes: list[str]


def candle_files(settings: Settings, data: Path | Sequence[DataSpec] | None = None) -> CandleRun:
    """The run's markets and their files (module docstring, **Data**).

    Without ``data`` every market the strategies trade, from ``replay.candles``. With ``data`` the
    markets it names and only those: a plain path is the run's first market (the first strategy's
    ``market``), ``(market, path)`` names its market; each strategy keeps the named markets it trades,
    and one trading none of them is left out of the run.
    """
    markets = candle_markets(settings)
    specs: list[DataSpec] = [(None, data)] if isinstance(data, Path) else list(data or ())
    given: dict[str, Path] = {}
    for named, path in specs:
        market = named or markets[0]
        if market not in markets:
            raise BacktestError(
                f"--data {market}=...: no strategy of the run trades {market} "
                f"(they trade {', '.join(markets)})"
            )
        if market in given:
            raise BacktestError(f"--data gives {market} twice (a plain FILE is {markets[0]})")
        given[market] = path
    if not given:
        files = {m: settings.replay.candles.get(m) for m in markets}
        missing = [m for m, path in files.items() if path is None]
        if missing:
            raise BacktestError(
                f"no candle file for {', '.join(missing)} in replay.candles: give one with --data MARKET=FILE"
            )
        return CandleRun(settings, {m: path for m, path in files.items() if path is not None}, [])
    run_settings, notes = restrict_markets(settings, list(given), "--data")
    return CandleRun(run_settings, {m: given[m] for m in candle_markets(run_settings)}, notes)


def restrict_markets(settings: Settings, markets: Sequence[str], source: str) -> tuple[Settings, list[str]]:
    """The settings with each strategy trading only those of ``markets`` it lists (one listing none of
    them is left out), and notes saying so; ``source`` names where the markets came from."""
    listed = candle_markets(settings)
    if set(listed) <= set(markets):
        return settings, []
    wanted = set(markets)
    kept = [
        s.model_copy(update={"market": own[0], "markets": tuple(own)})
        for s in settings.strategies
        for own in [[m for m in s.markets if m in wanted]]
        if own
    ]
    if not kept:
        raise BacktestError(f"no strategy of the run trades {', '.join(markets)} ({source})")
    notes = [
        f"Left out {s.name}: it trades none of the markets of the {source} ({', '.join(markets)})."
        for s in settings.strategies
        if not wanted.intersection(s.markets)
    ]
    traded = [m for m in listed if m in wanted]
    notes.append(
        f"Markets: the run trades {', '.join(traded)} (from the {source}), not every market the strategies "
        f"list ({', '.join(listed)})."
    )
    return revalidated(settings.model_copy(update={"strategies": kept})), notes


@dataclass(frozen=True)
class MarketCandles:
    """The candle tables of a run, one per market (in the run's market order), and where they came from.

    ``bases`` is each market's first usable close in the data as loaded; slices keep it, so the
    equal-weight benchmark of every walk-forward window is on one scale.
    """

    tables: dict[str, CandleTable]
    sources: dict[str, str]
    bases: dict[str, float]

    @classmethod
    def of(cls, tables: Mapping[str, CandleTable], sources: Mapping[str, str] | None = None) -> MarketCandles:
        if not tables:
            raise BacktestError("no market to backtest")
        intervals = {m: t.interval_ms for m, t in tables.items()}
        if len(set(intervals.values())) > 1:
            sizes = ", ".join(f"{m} {ms // 1000}s" for m, ms in intervals.items())
            raise BacktestError(f"the markets' candles must have one bar size, got {sizes}")
        bases = {}
        for market, table in tables.items():
            close = table.close[~table.flags]
            if close.shape[0] == 0:
                raise BacktestError(f"{market}: no usable bar")
            bases[market] = float(close[0])
        found = dict(sources or {})
        return cls(
            dict(tables),
            {m: found.get(m, str(t.provenance.get("source", ""))) for m, t in tables.items()},
            bases,
        )

    @property
    def markets(self) -> list[str]:
        return list(self.tables)

    @property
    def interval_ms(self) -> int:
        return next(iter(self.tables.values())).interval_ms

    def between(self, start_ms: int | None, end_ms: int | None) -> MarketCandles:
        """Every market's bars opening in ``[start_ms, end_ms)``, bases kept."""
        tables = {m: t.between(start_ms, end_ms) for m, t in self.tables.items()}
        return MarketCandles(tables, self.sources, self.bases)

    def span(self) -> tuple[int, int]:
        """First usable bar's open to last usable bar's close, over every market."""
        stamps = [t.timestamp[~t.flags] for t in self.tables.values()]
        stamps = [ts for ts in stamps if ts.shape[0]]
        if not stamps or sum(ts.shape[0] for ts in stamps) < 2:
            raise BacktestError("the data has fewer than two usable bars")
        return min(int(ts[0]) for ts in stamps), max(int(ts[-1]) for ts in stamps) + self.interval_ms


def load_market_candles(files: Mapping[str, Path]) -> MarketCandles:
    """Each market's file through :func:`load_candles`."""
    return MarketCandles.of(
        {m: load_candles(path) for m, path in files.items()}, {m: str(p) for m, p in files.items()}
    )


def market_candles(
    settings: Settings, data: CandleTable | MarketCandles
) -> tuple[Settings, MarketCandles, list[str]]:
    """``data`` as :class:`MarketCandles` (a single table is the run's first market, as a plain
    ``--data FILE``), the settings restricted to its markets (:func:`restrict_markets`), notes."""
    if not isinstance(data, MarketCandles):
        data = MarketCandles.of({candle_markets(settings)[0]: data})
    run_settings, notes = restrict_markets(settings, data.markets, "data")
    return run_settings, data, notes


def instrument_for(market: str) -> Instrument:
    """A candle market's instrument: a Binance spot pair with its tick and lot (``binance_instrument``)."""
    venue, _, symbol = market.partition(":")
    if venue != "binance" or "/" not in symbol:
        raise BacktestError(f"candle backtests trade Binance spot pairs (binance:BASE/QUOTE), not {market!r}")
    return binance_instrument(market)


def prepare(
    settings: Settings, strategies: Sequence[str] = (), exits: ExitsMode | None = None
) -> tuple[Settings, list[str]]:
    """The run's settings (strategies chosen, exit mode applied) and notes on the adjustments."""
    chosen, notes = select_strategies(settings, strategies)
    adjusted = apply_exit_mode(chosen, exits)
    if exits == "signal":
        risk = adjusted.portfolio.risk_per_trade
        notes.append(
            "Exits: signal. managed=false for the run: only a strategy's own exit signal (or settlement) "
            "closes a position; no targets, stop, time or trailing exit. Without a stop the whole entry "
            f"is at risk, so the portfolio sizes each entry to about {risk:.0%} x signal strength of "
            "equity (portfolio.risk_per_trade; raise it with --set for larger positions)."
        )
    elif exits == "managed":
        notes.append(
            "Exits: managed. The exit state machine (targets, stop, time, trailing) runs for every position."
        )
    return adjusted, notes


__all__ = [
    "BacktestError",
    "CandleRun",
    "DataSpec",
    "EngineMode",
    "ExitsMode",
    "MarketCandles",
    "Progress",
    "apply_exit_mode",
    "candle_files",
    "candle_markets",
    "exit_modes",
    "instrument_for",
    "is_polymarket",
    "load_candles",
    "load_market_candles",
    "market_candles",
    "parse_data_spec",
    "prepare",
    "restrict_markets",
    "revalidated",
    "select_strategies",
]
