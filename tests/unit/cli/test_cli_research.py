"""The research commands end to end through the CLI: data, backtest, walkforward, sweep."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from matplotlib.image import imread
from typer.testing import CliRunner

from actors.data.candles import CandleTable, read_csv, read_parquet
from supervisor import cli  # noqa: F401  (registers every command on the app)
from supervisor.cli.app import app
from tests.paths import REPO_ROOT

ROOT = REPO_ROOT
DATA = ROOT / "ops/data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"
MARKETS = ROOT / "ops/data/polymarket/BTC-5m-markets-2026-07-24.jsonl.gz"
TICKS = ROOT / "ops/data/polymarket/BTCUSD-chainlink-2026-07-24.csv.gz"
EXCHANGE_INFO = ROOT / "tests/fixtures/binance-spot/exchange_info_response.json"
HEADLINE = (
    "bars",
    "trades",
    "total_return",
    "buy_and_hold_return",
    "max_drawdown",
    "win_rate",
    "sharpe",
    "sortino",
    "cagr",
    "exposure",
    "fees_paid",
    "pnl_by_exit_reason",
    "elapsed_s",
    "skipped_gates",
    "rejections",
    "reconciliation_difference",
)
EXIT_REASONS = ("target_one", "target_two", "stop", "time_exit", "trailing", "signal", "settlement")

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _ok(result: Any) -> str:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return str(result.output)


def _csv_slice(path: Path, rows: int) -> Path:
    table = read_csv(DATA)
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(rows):
        lines.append(
            f"{table.timestamp[i]},{table.open[i]},{table.high[i]},{table.low[i]},{table.close[i]},{table.volume[i]}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def polymarket_slice(tmp_path: Path, count: int = 24) -> tuple[Path, Path]:
    """The first ``count`` markets of the bundled day and the Chainlink ticks up to their end."""
    with gzip.open(MARKETS, "rt") as handle:
        rows = sorted((json.loads(line) for line in handle if line.strip()), key=lambda r: r["start_sec"])
    chosen = rows[:count]
    end_ms = max(r["end_sec"] for r in chosen) * 1000 + 1_000
    markets = tmp_path / "markets.jsonl.gz"
    with gzip.open(markets, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in chosen)
    ticks = tmp_path / "ticks.csv.gz"
    with gzip.open(TICKS, "rt") as src, gzip.open(ticks, "wt") as dst:
        dst.write(src.readline())
        dst.writelines(line for line in src if int(line.split(",", 1)[0]) <= end_ms)
    return markets, ticks


def _assert_png(path: Path) -> None:
    image = imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 200
    assert image.shape[1] > 400
    assert float(np.std(image)) > 0.01  # not a blank canvas


# --------------------------------------------------------------------------- data


def test_data_import_writes_cleaned_parquet_with_provenance(tmp_path: Path) -> None:
    out = tmp_path / "btc.parquet"
    text = _ok(invoke("data", "import", str(DATA), "--out", str(out)))
    assert "30,900 bars" in text
    table = read_parquet(out)
    assert len(table) == 30_900
    assert table.provenance["format"] == "csv"
    assert len(table.provenance["sha256"]) == 64
    assert table.provenance["cleaning"] == {
        "duplicates_removed": 0,
        "zero_volume_dropped": 0,
        "flagged_moves": 0,
        "forward_filled": 0,
    }


def test_data_import_of_ccxt_json_cleans_duplicates_and_zero_volume(tmp_path: Path) -> None:
    table = read_csv(DATA).slice(0, 50)
    rows = [
        [int(table.timestamp[i]), table.open[i], table.high[i], table.low[i], table.close[i], table.volume[i]]
        for i in range(50)
    ]
    rows.append(list(rows[10]))
    rows[20][5] = 0.0
    source = tmp_path / "ohlcv.json"
    source.write_text(json.dumps(rows))
    text = _ok(invoke("data", "import", str(source)))
    assert "duplicates removed 1" in text
    assert "zero-volume dropped 1" in text
    assert len(read_parquet(tmp_path / "ohlcv.parquet")) == 49


def test_data_inspect_reports_gaps_duplicates_zero_volume_and_moves(tmp_path: Path) -> None:
    path = _csv_slice(tmp_path / "raw.csv", 100)
    with path.open() as handle:
        rows = list(csv.reader(handle))
    rows[31][5] = "0"  # zero volume
    rows[61][4] = str(float(rows[60][4]) * 1.3)  # a 30% jump
    rows = [*rows[:11], *rows[14:], rows[50]]  # 3 bars missing, one duplicate
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    doc = json.loads(_ok(invoke("data", "inspect", str(path), "--json")))
    assert doc["rows"] == 98
    assert doc["duplicates"] == 1
    assert doc["zero_volume"] == 1
    assert doc["missing_bars"] == 3
    assert len(doc["gaps"]) == 1
    assert len(doc["suspicious_moves"]) == 2  # up and back down
    assert doc["start"] == "2024-03-01T00:00:00.000Z"
    text = _ok(invoke("data", "inspect", str(path)))
    assert "gaps 1 (3 missing bars)" in text
    assert "suspicious moves 2" in text


def test_data_inspect_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = invoke("data", "inspect", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "no such file" in result.output


class Klines:
    """Binance's exchangeInfo (BTCUSDT only) and klines from the bundled CSV: what ccxt asks for."""

    def __init__(self) -> None:
        self.table: CandleTable = read_csv(DATA)
        info = json.loads(EXCHANGE_INFO.read_text())
        symbol = info["symbols"][0]
        symbol.update(symbol="BTCUSDT", baseAsset="BTC", quoteAsset="USDT")
        info["symbols"] = [symbol]
        self.info = info

    def _row(self, i: int) -> list[object]:
        t, ts = self.table, int(self.table.timestamp[i])
        prices = [f"{p:.2f}" for p in (t.open[i], t.high[i], t.low[i], t.close[i])]
        return [ts, *prices, f"{t.volume[i]:.5f}", ts + 59_999, "0", 0, "0", "0", "0"]

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/api/v3/exchangeInfo":
            return web.json_response(self.info)
        if request.path != "/api/v3/klines":
            return web.json_response({"code": -1000, "msg": "unknown path"}, status=404)
        t = self.table
        start = int(request.query["startTime"])
        end = int(request.query.get("endTime", 2**62))
        lo = int(np.searchsorted(t.timestamp, start))
        hi = min(lo + int(request.query.get("limit", 500)), int(np.searchsorted(t.timestamp, end, "right")))
        rows = [self._row(i) for i in range(lo, hi)]
        return web.json_response(rows)


@pytest.fixture
def klines_url() -> Iterator[str]:
    """A loopback server speaking Binance's exchangeInfo/klines, in its own thread and event loop."""
    server = Klines()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        web_app = web.Application()
        web_app.router.add_route("GET", "/{tail:.*}", server.handle)
        site_runner = web.AppRunner(web_app)
        await site_runner.setup()
        site = web.TCPSite(site_runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = site_runner
        state["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{state['port']}"
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_data_download_from_a_loopback_exchange_writes_parquet(klines_url: str, tmp_path: Path) -> None:
    out = tmp_path / "dl.parquet"
    text = _ok(
        invoke(
            "data",
            "download",
            "--since",
            "2024-03-01",
            "--until",
            "2024-03-01T02:00",
            "--url",
            klines_url,
            "--out",
            str(out),
        )
    )
    assert "120 rows fetched" in text
    table = read_parquet(out)
    assert len(table) == 120
    assert int(table.timestamp[0]) == 1_709_251_200_000
    assert table.provenance["source"] == "ccxt:binance"


# --------------------------------------------------------------------------- backtest


@pytest.mark.parametrize("exits", ["signal", "managed"])
def test_backtest_mean_reversion_writes_json_trades_and_report(tmp_path: Path, exits: str) -> None:
    out, trades, report = tmp_path / "out.json", tmp_path / "t.csv", tmp_path / "rep"
    text = _ok(
        invoke(
            "backtest",
            "--strategy",
            "mean_reversion",
            "--exits",
            exits,
            "--json",
            str(out),
            "--trades",
            str(trades),
            "--report",
            str(report),
        )
    )
    assert "Backtest mean_reversion" in text
    doc = json.loads(out.read_text())
    for key in HEADLINE:
        assert key in doc, key
    assert set(EXIT_REASONS) <= set(doc["pnl_by_exit_reason"])
    assert doc["bars"] == 50_000  # the bundled BTC/USDT default: 2024-10-01 .. 2024-11-04
    assert doc["exits"] == {"mode": exits, "managed": {"mean_reversion": exits == "managed"}}
    assert doc["skipped_gates"]["liquidity"] > 0
    assert Decimal(doc["reconciliation_difference"]) == 0
    with trades.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == doc["trades"] > 10
    reasons = {r["exit_reason"] for r in rows}
    if exits == "signal":
        assert reasons == {"signal"}
    else:
        assert reasons - {"signal"}  # targets, stops or time exits fired too
    assert sum(Decimal(r["pnl"]) for r in rows) == sum(Decimal(v) for v in doc["pnl_by_exit_reason"].values())
    markdown = (report / "report.md").read_text()
    for chart in ("equity.png", "drawdown.png", "trades.png"):
        assert f"({chart})" in markdown
        _assert_png(report / chart)


def test_backtest_polymarket_lag_says_what_is_real_and_what_is_modelled(tmp_path: Path) -> None:
    markets, ticks = polymarket_slice(tmp_path)
    out = tmp_path / "pm.json"
    _ok(
        invoke(
            "backtest",
            "--strategy",
            "polymarket_lag",
            "--set",
            f"replay.polymarket_markets={markets}",
            "--set",
            f"replay.chainlink_ticks={ticks}",
            "--json",
            str(out),
            "--report",
            str(tmp_path / "rep"),
        )
    )
    doc = json.loads(out.read_text())
    assert doc["engine"] == "driver"
    assert doc["trades"] > 0
    assert doc["trades_by_exit_reason"]["settlement"] == doc["trades"]
    assert doc["data"]["markets"] == 24
    # a window's Up and Down tokens are one market, as for every gate: counted by condition
    with gzip.open(markets, "rt") as handle:
        windows = {f"polymarket:{json.loads(line)['condition_id']}" for line in handle if line.strip()}
    assert set(doc["trades_by_market"]) <= windows
    assert sum(doc["trades_by_market"].values()) == doc["trades"]
    assert set(doc["pnl_by_market"]) == set(doc["trades_by_market"])
    assert f"| {next(iter(doc['trades_by_market']))} |" in (tmp_path / "rep/report.md").read_text()
    notes = " ".join(doc["notes"])
    assert "REAL (recorded)" in notes
    assert "MODELLED" in notes
    assert "Survivorship" in notes
    assert "MODELLED" in (tmp_path / "rep/report.md").read_text()
    _assert_png(tmp_path / "rep/trades.png")


def test_backtest_multi_strategy_config_reports_each_strategy_and_correlation(tmp_path: Path) -> None:
    config = tmp_path / "two.toml"
    config.write_text(
        "[portfolio]\ncash_reserve = 0.1\n\n"
        '[[strategies]]\nkind = "mean_reversion"\nname = "mr"\n'
        'market = "binance:BTC/USDT"\nallocation = 0.5\n\n'
        '[[strategies]]\nkind = "momentum_breakout"\nname = "mb"\n'
        'market = "binance:BTC/USDT"\nallocation = 0.3\n'
    )
    out, report = tmp_path / "out.json", tmp_path / "rep"
    _ok(invoke("backtest", "--config", str(config), "--json", str(out), "--report", str(report)))
    doc = json.loads(out.read_text())
    assert doc["strategies"] == ["mr", "mb"]
    assert doc["allocations"] == {"mr": 0.5, "mb": 0.3}
    assert set(doc["per_strategy"]) == {"mr", "mb"}
    per_trades = sum(s["trades"] for s in doc["per_strategy"].values())
    assert per_trades == doc["trades"]
    assert doc["correlation"]["mr"]["mb"] == doc["correlation"]["mb"]["mr"]
    assert doc["correlation"]["mr"]["mr"] == 1.0
    markdown = (report / "report.md").read_text()
    assert "## Strategies in the portfolio" in markdown
    assert "## Correlation of strategy returns" in markdown
    _assert_png(report / "strategies.png")


def _bundled_slice(tmp_path: Path, base: str, rows: int) -> Path:
    """The first ``rows`` bars of a bundled 2024-10 1m market as a plain CSV."""
    src = ROOT / f"ops/data/binance/{base}USDT-1m-2024-10-01_2024-11-04.csv.gz"
    out = tmp_path / f"{base.lower()}.csv"
    with gzip.open(src, "rt") as handle:
        out.write_text("".join(line for _i, line in zip(range(rows + 1), handle, strict=False)))
    return out


def _two_market_config(tmp_path: Path) -> Path:
    config = tmp_path / "two-markets.toml"
    config.write_text(
        '[[strategies]]\nkind = "mean_reversion"\nname = "mean_reversion"\n'
        'markets = ["binance:BTC/USDT", "binance:ETH/USDT"]\nallocation = 0.4\n'
    )
    return config


def test_backtest_repeated_data_market_file_trades_each_market_and_counts_trades_by_market(
    tmp_path: Path,
) -> None:
    btc, eth = _bundled_slice(tmp_path, "BTC", 3 * 1440), _bundled_slice(tmp_path, "ETH", 3 * 1440)
    config, out, report = _two_market_config(tmp_path), tmp_path / "out.json", tmp_path / "rep"
    data = ["--data", f"binance:BTC/USDT={btc}", "--data", f"binance:ETH/USDT={eth}"]
    text = _ok(
        invoke("backtest", "--config", str(config), *data, "--json", str(out), "--report", str(report))
    )
    assert "binance:ETH/USDT:" in text
    doc = json.loads(out.read_text())
    assert doc["engine"] == "driver"
    assert doc["bars"] == 3 * 1440
    assert doc["data"]["bars"] == 2 * 3 * 1440
    assert doc["data"]["per_market"]["binance:ETH/USDT"]["source"] == str(eth)
    by_market = doc["trades_by_market"]
    assert list(by_market) == ["binance:BTC/USDT", "binance:ETH/USDT"]
    assert all(n > 0 for n in by_market.values())
    assert sum(by_market.values()) == doc["trades"]
    assert sum(Decimal(v) for v in doc["pnl_by_market"].values()) == Decimal(doc["stats"]["total_pnl"])
    assert doc["per_market"]["binance:BTC/USDT"]["trades"] == by_market["binance:BTC/USDT"]
    assert doc["market_correlation"]["binance:BTC/USDT"]["binance:BTC/USDT"] == 1.0
    assert set(doc["pair_correlation"]) == {
        "mean_reversion@binance:BTC/USDT",
        "mean_reversion@binance:ETH/USDT",
    }
    markdown = (report / "report.md").read_text()
    assert "## Markets in the portfolio" in markdown
    assert "## Correlation of strategy/market P&L" in markdown
    _assert_png(report / "trades.png")
    # one MARKET=FILE: the run trades that market alone, on the fast path
    one = tmp_path / "eth.json"
    _ok(invoke("backtest", "--config", str(config), "--data", f"binance:ETH/USDT={eth}", "--json", str(one)))
    alone = json.loads(one.read_text())
    assert alone["engine"] == "fast"
    assert list(alone["trades_by_market"]) == ["binance:ETH/USDT"]
    assert any("not every market" in note for note in alone["notes"])


def test_backtest_with_a_market_pattern_trades_as_its_explicit_list(tmp_path: Path) -> None:
    """``binance:*/USDT`` resolves against replay.candles and the --data markets (ADA is only given
    here): the run trades exactly what the explicit (sorted) list of those markets trades."""
    btc, ada = _bundled_slice(tmp_path, "BTC", 2 * 1440), _bundled_slice(tmp_path, "ETH", 2 * 1440)
    data = ["--data", f"binance:BTC/USDT={btc}", "--data", f"binance:ADA/USDT={ada}"]
    runs = {}
    for name, markets in (
        ("pattern", '["binance:*/USDT"]'),
        ("listed", '["binance:ADA/USDT", "binance:BTC/USDT"]'),
    ):
        config, out = tmp_path / f"{name}.toml", tmp_path / f"{name}.json"
        config.write_text(
            f'[[strategies]]\nkind = "mean_reversion"\nname = "mean_reversion"\nmarkets = {markets}\n'
            "allocation = 0.4\n"
        )
        _ok(invoke("backtest", "--config", str(config), *data, "--json", str(out)))
        runs[name] = json.loads(out.read_text())
    pattern, listed = runs["pattern"], runs["listed"]
    assert list(pattern["trades_by_market"]) == ["binance:ADA/USDT", "binance:BTC/USDT"]  # sorted
    assert pattern["trades"] > 0
    for key in ("trades", "trades_by_market", "pnl_by_market", "stats", "pair_correlation"):
        assert pattern[key] == listed[key], key


def test_backtest_with_a_pattern_matching_nothing_exits_2_naming_field_and_file(tmp_path: Path) -> None:
    config = tmp_path / "nothing.toml"
    config.write_text('[[strategies]]\nkind = "mean_reversion"\nname = "mr"\nmarkets = ["binance:*/EUR"]\n')
    result = invoke("backtest", "--config", str(config))
    assert result.exit_code == 2
    assert (
        f"{config}: strategies[name=mr].markets: pattern 'binance:*/EUR' matches no market" in result.output
    )


def test_backtest_data_for_a_market_no_strategy_trades_exits_2(tmp_path: Path) -> None:
    eth = _bundled_slice(tmp_path, "ETH", 100)
    result = invoke("backtest", "--strategy", "mean_reversion", "--data", f"binance:DOGE/USDT={eth}")
    assert result.exit_code == 2
    assert "no strategy of the run trades binance:DOGE/USDT" in result.output


def test_walkforward_on_two_markets_counts_out_of_sample_trades_by_market(tmp_path: Path) -> None:
    btc, eth = _bundled_slice(tmp_path, "BTC", 3 * 1440), _bundled_slice(tmp_path, "ETH", 3 * 1440)
    out = tmp_path / "wf.json"
    _ok(
        invoke(
            "walkforward",
            "--config",
            str(_two_market_config(tmp_path)),
            "--strategy",
            "mean_reversion",
            "--data",
            f"binance:BTC/USDT={btc}",
            "--data",
            f"binance:ETH/USDT={eth}",
            "--train",
            "1d",
            "--test",
            "1d",
            "--grid",
            "bb_std=2,2.5",
            "--workers",
            "1",
            "--json",
            str(out),
        )
    )
    doc = json.loads(out.read_text())
    assert len(doc["windows"]) == 2
    assert doc["oos"]["bars"] == 2 * 1440
    assert set(doc["oos"]["trades_by_market"]) <= {"binance:BTC/USDT", "binance:ETH/USDT"}
    assert sum(doc["oos"]["trades_by_market"].values()) == doc["oos"]["trades"]


def test_backtest_unknown_strategy_exits_2_naming_the_known_ones() -> None:
    result = invoke("backtest", "--strategy", "nope")
    assert result.exit_code == 2
    assert "unknown strategy 'nope'" in result.output
    assert "mean_reversion" in result.output


# --------------------------------------------------------------------------- walkforward and sweep


def test_walkforward_serial_cli_writes_windows_stability_and_oos(tmp_path: Path) -> None:
    data = _csv_slice(tmp_path / "five_days.csv", 5 * 1440)
    out = tmp_path / "wf.json"
    text = _ok(
        invoke(
            "walkforward",
            "--strategy",
            "mean_reversion",
            "--data",
            str(data),
            "--train",
            "2d",
            "--test",
            "1d",
            "--grid",
            "bb_std=2,2.5",
            "--grid",
            "rsi_buy=25,30",
            "--workers",
            "1",
            "--json",
            str(out),
        )
    )
    assert "stability score" in text
    doc = json.loads(out.read_text())
    assert doc["mode"] == "serial"
    assert len(doc["windows"]) == 3
    assert doc["points"] == 4
    assert set(doc["stability"]["keys"]) == {"bb_std", "rsi_buy"}
    assert 0.0 < doc["stability"]["score"] <= 1.0
    assert doc["oos"]["bars"] == 3 * 1440
    assert doc["oos"]["equity"][-1][1] > 0


def test_sweep_serial_cli_ranks_points(tmp_path: Path) -> None:
    data = _csv_slice(tmp_path / "three_days.csv", 3 * 1440)
    out = tmp_path / "sweep.json"
    _ok(
        invoke(
            "sweep",
            "--strategy",
            "mean_reversion",
            "--data",
            str(data),
            "--grid",
            "bb_std=1.5,2.5",
            "--workers",
            "1",
            "--json",
            str(out),
        )
    )
    doc = json.loads(out.read_text())
    assert [r["params"] for r in doc["results"]] == [{"bb_std": 1.5}, {"bb_std": 2.5}]
    assert doc["best"]["objective"] == max(r["objective"] for r in doc["results"])


def test_walkforward_with_a_bad_grid_key_exits_2(tmp_path: Path) -> None:
    data = _csv_slice(tmp_path / "d.csv", 3 * 1440)
    result = invoke(
        "walkforward",
        "--strategy",
        "mean_reversion",
        "--data",
        str(data),
        "--grid",
        "bb_sd=2",
        "--workers",
        "1",
    )
    assert result.exit_code == 2
    assert "not a parameter of mean_reversion" in result.output
