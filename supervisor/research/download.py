"""Downloading candles with ccxt: paginated, rate-limited, retried with backoff, resumable.

Re-running a download into the same file fetches only what is missing: the file's last
bar is the resume point, and the merged result is deduplicated before it is written.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async

from actors.data.candles import CandleTable, clean_table, from_rows, read_parquet, write_parquet

log = logging.getLogger(__name__)

RETRYABLE = (ccxt_async.NetworkError, ccxt_async.ExchangeNotAvailable, ccxt_async.RateLimitExceeded)


@dataclass
class DownloadReport:
    """What a download did: pages, rows, retries by cause, and where it resumed from."""

    rows_fetched: int = 0
    pages: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    resumed_from_ms: int | None = None
    rows_in_file: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def timeframe_ms(timeframe: str) -> int:
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
    try:
        return int(timeframe[:-1]) * units[timeframe[-1]]
    except (KeyError, ValueError):
        raise ValueError(f"unsupported timeframe {timeframe!r}, expected e.g. 1m, 5m, 1h, 1d") from None


def _retry_after_s(exchange: Any) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


async def _fetch_page(
    exchange: Any,
    symbol: str,
    timeframe: str,
    since: int,
    limit: int,
    report: DownloadReport,
    *,
    max_retries: int,
    backoff_s: float,
    rng: random.Random,
) -> list[list[float]]:
    """One page; transient failures (network, 5xx, 429) are retried with capped exponential backoff."""
    attempt = 0
    while True:
        try:
            rows: list[list[float]] = await exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
            return rows
        except RETRYABLE as exc:
            attempt += 1
            cause = type(exc).__name__
            report.retries[cause] = report.retries.get(cause, 0) + 1
            if attempt > max_retries:
                log.error(
                    "giving up on %s %s since=%d after %d retries: %s", symbol, timeframe, since, attempt, exc
                )
                raise
            delay = _retry_after_s(exchange)
            if delay is None:
                delay = min(30.0, backoff_s * 2 ** (attempt - 1)) * (0.5 + rng.random())
            log.warning(
                "%s fetching %s since=%d (attempt %d), retrying in %.2fs",
                cause,
                symbol,
                since,
                attempt,
                delay,
            )
            await asyncio.sleep(delay)


async def download_ohlcv(
    exchange: Any,
    symbol: str,
    timeframe: str,
    since_ms: int,
    until_ms: int | None,
    out: Path,
    *,
    page_limit: int = 1000,
    max_retries: int = 6,
    backoff_s: float = 0.5,
    on_page: Callable[[int, int], None] | None = None,
) -> DownloadReport:
    """Fetch [since_ms, until_ms) into ``out`` (Parquet), resuming from what the file already holds."""
    step = timeframe_ms(timeframe)
    report = DownloadReport()
    existing: CandleTable | None = read_parquet(out) if out.exists() else None
    start = since_ms
    if existing is not None and len(existing) and int(existing.timestamp[-1]) >= since_ms:
        start = int(existing.timestamp[-1]) + step
        report.resumed_from_ms = start
    end = until_ms if until_ms is not None else exchange.milliseconds()
    rows: list[list[float]] = []
    rng = random.Random(0)
    cursor = start
    while cursor < end:
        page = await _fetch_page(
            exchange,
            symbol,
            timeframe,
            cursor,
            page_limit,
            report,
            max_retries=max_retries,
            backoff_s=backoff_s,
            rng=rng,
        )
        report.pages += 1
        page = [r for r in page if cursor <= int(r[0]) < end]
        if not page:
            break
        rows.extend(page)
        cursor = int(page[-1][0]) + step
        if on_page is not None:
            on_page(len(rows), cursor)
    report.rows_fetched = len(rows)
    provenance = {
        "source": f"ccxt:{exchange.id}",
        "symbol": symbol,
        "timeframe": timeframe,
        "since_ms": since_ms,
        "until_ms": until_ms,
    }
    fetched = from_rows(rows, provenance)
    if existing is not None:
        merged = {
            c: _concat(existing, fetched, c) for c in ("timestamp", "open", "high", "low", "close", "volume")
        }
        fetched = CandleTable.from_columns(
            merged, None, {**existing.provenance, **provenance, "since_ms": since_ms}
        )
    cleaned, _ = clean_table(fetched)
    write_parquet(cleaned, out)
    report.rows_in_file = len(cleaned)
    return report


def _concat(a: CandleTable, b: CandleTable, column: str) -> Any:
    import numpy as np

    return np.concatenate([getattr(a, column), getattr(b, column)])
