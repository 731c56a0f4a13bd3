"""Load Binance-style OHLCV CSV files (``timestamp,open,high,low,close,volume``).

``timestamp`` is the bar's open time in ms since the epoch, UTC; a ``.gz`` file is read
transparently. Columns are found by header name, so extra or reordered columns are fine.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import TextIO

import numpy as np

from actors.domain.model import MINUTE_MS, Candle

OHLCV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def open_text(path: str | Path) -> TextIO:
    """A CSV file as text; a ``.gz`` one is decompressed on the fly."""
    p = Path(path)
    if p.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="")
    return open(p, encoding="utf-8", newline="")


def _read_columns(path: str | Path) -> dict[str, list[str]]:
    with open_text(path) as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader)]
        missing = [c for c in OHLCV_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {missing} (header {header})")
        index = [header.index(c) for c in OHLCV_COLUMNS]
        columns: dict[str, list[str]] = {c: [] for c in OHLCV_COLUMNS}
        lists = [columns[c] for c in OHLCV_COLUMNS]
        for row in reader:
            if not row:
                continue
            for out, i in zip(lists, index, strict=True):
                out.append(row[i])
    return columns


def load_ohlcv_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Columns as arrays: ``timestamp`` int64 (ms), the rest float64, in file order."""
    columns = _read_columns(path)
    arrays: dict[str, np.ndarray] = {
        "timestamp": np.array([int(v) for v in columns["timestamp"]], dtype=np.int64)
    }
    for name in OHLCV_COLUMNS[1:]:
        arrays[name] = np.array(columns[name], dtype=np.float64)
    return arrays


def load_candles_csv(
    path: str | Path, market: str = "binance:BTC/USDT", interval_ms: int = MINUTE_MS
) -> list[Candle]:
    """Every row as a ``Candle`` of ``market`` and bar size ``interval_ms``, in file order."""
    arrays = load_ohlcv_arrays(path)
    ts = arrays["timestamp"].tolist()
    o, h, lo, c, v = (arrays[n].tolist() for n in OHLCV_COLUMNS[1:])
    return [
        Candle(
            market=market,
            ts_ms=ts[i],
            interval_ms=interval_ms,
            open=o[i],
            high=h[i],
            low=lo[i],
            close=c[i],
            volume=v[i],
        )
        for i in range(len(ts))
    ]


__all__ = ["OHLCV_COLUMNS", "load_candles_csv", "load_ohlcv_arrays"]
