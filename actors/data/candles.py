"""Candle data on disk: import, inspect, clean, and store as Parquet with its provenance.

Cleaning follows the algo-trading guide: duplicates removed, zero-volume bars dropped,
single-bar moves over 15% flagged (kept in the file, kept out of signals, reported), gaps
reported and forward-filled only when asked. Every stored file carries where it came from.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from actors.data.candles_csv import open_text

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
SUSPICIOUS_MOVE = 0.15


@dataclass(frozen=True)
class CandleTable:
    """Columnar OHLCV: int64 ms open times and float64 prices, sorted by time."""

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    flagged: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_columns(
        cls,
        cols: dict[str, np.ndarray],
        flagged: np.ndarray | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> CandleTable:
        """Build from a column dict keyed by COLUMNS; missing flags mean none flagged."""
        n = int(cols["timestamp"].shape[0])
        return cls(
            timestamp=np.asarray(cols["timestamp"], dtype=np.int64),
            open=np.asarray(cols["open"], dtype=np.float64),
            high=np.asarray(cols["high"], dtype=np.float64),
            low=np.asarray(cols["low"], dtype=np.float64),
            close=np.asarray(cols["close"], dtype=np.float64),
            volume=np.asarray(cols["volume"], dtype=np.float64),
            flagged=np.zeros(n, dtype=bool) if flagged is None else flagged.astype(bool),
            provenance=provenance or {},
        )

    def columns(self) -> dict[str, np.ndarray]:
        return {c: getattr(self, c) for c in COLUMNS}

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    @property
    def interval_ms(self) -> int:
        """The modal spacing between bars (robust to a few gaps)."""
        if len(self) < 2:
            return 60_000
        steps, counts = np.unique(np.diff(self.timestamp), return_counts=True)
        return int(steps[np.argmax(counts)])

    def slice(self, start: int, stop: int) -> CandleTable:
        cols = {c: v[start:stop] for c, v in self.columns().items()}
        return CandleTable.from_columns(cols, self.flags[start:stop], self.provenance)

    def between(self, start_ms: int | None, end_ms: int | None) -> CandleTable:
        """Bars whose open time is in [start_ms, end_ms)."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.timestamp, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.timestamp, end_ms, "left"))
        return self.slice(lo, hi)

    @property
    def flags(self) -> np.ndarray:
        return self.flagged if self.flagged.shape[0] == len(self) else np.zeros(len(self), dtype=bool)

    def repeated(self, times: int) -> CandleTable:
        """The series repeated end to end, each copy shifted in time and rescaled to join (benchmarks)."""
        parts: list[CandleTable] = [self]
        span = int(self.timestamp[-1] - self.timestamp[0]) + self.interval_ms
        for k in range(1, times):
            scale = float(parts[-1].close[-1]) / float(self.open[0])
            cols = {c: getattr(self, c) * scale for c in ("open", "high", "low", "close")}
            cols["timestamp"] = self.timestamp + k * span
            cols["volume"] = self.volume.copy()
            parts.append(CandleTable.from_columns(cols, self.flags.copy(), self.provenance))
        joined = {c: np.concatenate([getattr(p, c) for p in parts]) for c in COLUMNS}
        flags = np.concatenate([p.flags for p in parts])
        return CandleTable.from_columns(joined, flags, {**self.provenance, "repeated": times})


def from_rows(rows: Iterable[Sequence[float]], provenance: dict[str, Any] | None = None) -> CandleTable:
    """From ccxt-style rows [ms, open, high, low, close, volume]; sorted, not yet cleaned."""
    data = np.asarray(list(rows), dtype=np.float64).reshape(-1, 6)
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    cols = {c: np.ascontiguousarray(data[:, i]) for i, c in enumerate(COLUMNS)}
    return CandleTable.from_columns(cols, None, provenance)


def read_csv(path: Path) -> CandleTable:
    """A CSV (or .csv.gz) with the header timestamp,open,high,low,close,volume (as in ops/data/binance)."""
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader)]
        if tuple(header[:6]) != COLUMNS:
            raise ValueError(f"{path}: expected columns {','.join(COLUMNS)}, got {','.join(header)}")
        rows = [[float(x) for x in row[:6]] for row in reader if row]
    return from_rows(rows, {"source": str(path), "format": "csv"})


def read_ccxt_json(path: Path) -> CandleTable:
    """A JSON array of ccxt fetch_ohlcv rows."""
    rows = json.loads(path.read_text())
    if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 6 for r in rows):
        raise ValueError(f"{path}: expected a JSON array of [ms, open, high, low, close, volume] rows")
    return from_rows([r[:6] for r in rows], {"source": str(path), "format": "ccxt-json"})


def write_parquet(table: CandleTable, path: Path) -> None:
    """Columnar storage with the provenance in the file's schema metadata."""
    arrow = pa.table(
        {
            "timestamp": pa.array(table.timestamp, pa.int64()),
            **{c: pa.array(getattr(table, c), pa.float64()) for c in COLUMNS[1:]},
            "flagged": pa.array(table.flags, pa.bool_()),
        }
    )
    arrow = arrow.replace_schema_metadata({"raytrader.provenance": json.dumps(table.provenance)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow, path)


def read_parquet(path: Path) -> CandleTable:
    arrow = pq.read_table(path)
    meta = arrow.schema.metadata or {}
    provenance = json.loads(meta.get(b"raytrader.provenance", b"{}"))
    cols = {name: arrow.column(name).to_numpy() for name in arrow.column_names}
    flagged = cols.get("flagged", np.zeros(arrow.num_rows, dtype=bool))
    return CandleTable.from_columns(cols, flagged, provenance)


def load_table(path: Path) -> CandleTable:
    """Any supported file by its extension: .parquet, .csv or .csv.gz, .json."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path)
    if suffix == ".csv" or path.name.lower().endswith(".csv.gz"):
        return read_csv(path)
    if suffix == ".json":
        return read_ccxt_json(path)
    raise ValueError(f"{path}: unsupported data file (use .parquet, .csv, .csv.gz or .json)")


@dataclass(frozen=True)
class Inspection:
    rows: int
    start_ms: int | None
    end_ms: int | None
    interval_ms: int
    duplicates: int
    zero_volume: int
    gaps: list[tuple[int, int]]
    missing_bars: int
    suspicious_moves: list[tuple[int, float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "interval_ms": self.interval_ms,
            "duplicates": self.duplicates,
            "zero_volume": self.zero_volume,
            "gaps": [{"after_ms": a, "missing_bars": n} for a, n in self.gaps],
            "missing_bars": self.missing_bars,
            "suspicious_moves": [{"ts_ms": t, "move": m} for t, m in self.suspicious_moves],
        }


def inspect_table(table: CandleTable, move_threshold: float = SUSPICIOUS_MOVE) -> Inspection:
    """Rows, span, gaps, duplicates, zero-volume bars and single-bar moves over the threshold."""
    n = len(table)
    interval = table.interval_ms
    ts = table.timestamp
    duplicates = int(n - np.unique(ts).shape[0])
    unique_ts = np.unique(ts)
    steps = np.diff(unique_ts)
    gap_idx = np.nonzero(steps > interval)[0]
    gaps = [(int(unique_ts[i]), int(steps[i] // interval) - 1) for i in gap_idx]
    moves = _single_bar_moves(table)
    suspicious = [(int(ts[i]), float(moves[i])) for i in np.nonzero(np.abs(moves) > move_threshold)[0]]
    return Inspection(
        rows=n,
        start_ms=int(ts[0]) if n else None,
        end_ms=int(ts[-1]) if n else None,
        interval_ms=interval,
        duplicates=duplicates,
        zero_volume=int(np.count_nonzero(table.volume == 0)),
        gaps=gaps,
        missing_bars=sum(m for _, m in gaps),
        suspicious_moves=suspicious,
    )


def _single_bar_moves(table: CandleTable) -> np.ndarray:
    """Close-to-close return per bar (0 for the first)."""
    moves = np.zeros(len(table))
    if len(table) > 1:
        moves[1:] = table.close[1:] / table.close[:-1] - 1.0
    return moves


def clean_table(
    table: CandleTable, *, forward_fill: bool = False, move_threshold: float = SUSPICIOUS_MOVE
) -> tuple[CandleTable, dict[str, Any]]:
    """Deduplicate (last row wins), drop zero-volume bars, flag big moves, optionally fill gaps."""
    ts = table.timestamp
    # keep the last occurrence of each timestamp: later downloads correct earlier ones
    _, last_idx = np.unique(ts[::-1], return_index=True)
    keep = np.sort(len(ts) - 1 - last_idx)
    duplicates = len(ts) - keep.shape[0]
    cols = {c: getattr(table, c)[keep] for c in COLUMNS}
    nonzero = cols["volume"] > 0
    zero_volume = int(np.count_nonzero(~nonzero))
    cols = {c: v[nonzero] for c, v in cols.items()}
    filled = 0
    if forward_fill and cols["timestamp"].shape[0] > 1:
        cols, filled = _forward_fill(cols, table.interval_ms)
    cleaned = CandleTable.from_columns(cols, None, table.provenance)
    flagged = np.abs(_single_bar_moves(cleaned)) > move_threshold
    report = {
        "duplicates_removed": int(duplicates),
        "zero_volume_dropped": zero_volume,
        "flagged_moves": int(np.count_nonzero(flagged)),
        "forward_filled": filled,
    }
    return CandleTable.from_columns(cols, flagged, {**table.provenance, "cleaning": report}), report


def _forward_fill(cols: dict[str, np.ndarray], interval: int) -> tuple[dict[str, np.ndarray], int]:
    """Insert flat, zero-volume bars at the previous close for every missing interval."""
    ts = cols["timestamp"]
    full = np.arange(int(ts[0]), int(ts[-1]) + interval, interval, dtype=np.int64)
    pos = np.searchsorted(ts, full, side="right") - 1
    present = ts[pos] == full
    prev_close = cols["close"][pos]
    out = {"timestamp": full}
    for c in ("open", "high", "low", "close"):
        out[c] = np.where(present, cols[c][pos], prev_close)
    out["volume"] = np.where(present, cols["volume"][pos], 0.0)
    return out, int(np.count_nonzero(~present))
