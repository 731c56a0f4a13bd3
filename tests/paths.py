"""Where the tests find the repository, its bundled data and the venues' recorded JSON shapes."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
BTC_1M = REPO_ROOT / "ops/data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"
