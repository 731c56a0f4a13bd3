"""Market patterns: ``markets = ["binance:*/USDT"]`` stands for every available market it matches.

Resolved here and nowhere else, once, when the config is loaded (`config.loader.load_settings`), so
every other part of the system (topology, feeds, strategy cores and their per-market checkpoints,
the portfolio, research) only ever sees explicit market ids: a resolved market runs exactly as a
listed one.

Decisions, so nobody has to guess:

- A pattern is a market entry holding ``*``, ``?`` or ``[``: an fnmatch glob over the whole market
  id, case-sensitive (``fnmatchcase``), so ``binance:*/USDT`` matches ``binance:ETH/USDT`` and not
  ``binance:ETH/USDC``.
- It is matched against the *available* markets: the keys of ``replay.candles`` plus the markets
  the caller adds (the research CLI's ``--data MARKET=FILE``). In live mode too: a pattern is not
  matched against the venue's listing (Binance lists hundreds of USDT pairs; a glob that silently
  subscribes to all of them is not a safe default), so ``replay.candles`` is the explicit list a
  live pattern picks from; list a market explicitly to trade it live without a replay file.
- A pattern's matches are sorted and take its place in the list; a market already listed (or
  matched by an earlier pattern) is kept once, at its first place. ``market`` becomes the first
  resolved market, as for an explicit list.
- A pattern that matches nothing is a config error (naming the strategy's field and the file).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from config.models import Settings, StrategyConfig

PATTERN_CHARS = frozenset("*?[")


def is_pattern(market: str) -> bool:
    """Whether a market entry is a glob rather than one market id."""
    return not PATTERN_CHARS.isdisjoint(market)


def available_markets(settings: Settings, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The markets patterns resolve against: ``replay.candles``' markets and ``extra``, sorted."""
    return tuple(sorted({*settings.replay.candles, *extra}))


def expand(markets: Sequence[str], available: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``markets`` with each pattern replaced by its sorted matches in ``available`` (first place
    kept for a market named twice), and the patterns that matched nothing."""
    pool = sorted(set(available))
    out: dict[str, None] = {}
    unmatched: list[str] = []
    for entry in markets:
        if not is_pattern(entry):
            out.setdefault(entry, None)
            continue
        matches = [m for m in pool if fnmatchcase(m, entry)]
        if not matches:
            unmatched.append(entry)
        for market in matches:
            out.setdefault(market, None)
    return tuple(out), tuple(unmatched)


def resolve_strategy(
    config: StrategyConfig, available: Iterable[str]
) -> tuple[StrategyConfig, tuple[str, ...]]:
    """The strategy with its patterns resolved (unchanged without patterns), and its unmatched ones."""
    if not any(is_pattern(m) for m in config.markets):
        return config, ()
    markets, unmatched = expand(config.markets, available)
    if unmatched or not markets:
        return config, unmatched
    return config.model_copy(update={"market": markets[0], "markets": markets}), ()


def resolve_markets(
    settings: Settings, extra: Iterable[str] = ()
) -> tuple[Settings, dict[int, tuple[str, ...]]]:
    """Every strategy's patterns resolved against :func:`available_markets`, and per strategy index
    the patterns that matched nothing (empty when all resolved; the settings are then unchanged
    where a pattern failed, so the caller reports rather than runs)."""
    available = available_markets(settings, extra)
    strategies: list[StrategyConfig] = []
    failed: dict[int, tuple[str, ...]] = {}
    for index, config in enumerate(settings.strategies):
        resolved, unmatched = resolve_strategy(config, available)
        if unmatched:
            failed[index] = unmatched
        strategies.append(resolved)
    if strategies == list(settings.strategies):
        return settings, failed
    return settings.model_copy(update={"strategies": strategies}), failed


def unresolved(markets: Iterable[str]) -> list[str]:
    """The patterns among ``markets`` (for guards where only resolved ids may arrive)."""
    return [m for m in markets if is_pattern(m)]


__all__ = [
    "PATTERN_CHARS",
    "available_markets",
    "expand",
    "is_pattern",
    "resolve_markets",
    "resolve_strategy",
    "unresolved",
]
