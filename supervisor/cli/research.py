"""Research commands: `raytrader data ...`, `backtest`, `walkforward`, `sweep`.

Heavy imports (numpy, ccxt, Ray, matplotlib) stay inside the command bodies so ``--help`` is instant.
Exit codes as everywhere in the CLI: 2 for bad input (unknown strategy, bad file, bad grid), 1 when the
run itself failed (a download that gave up).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from supervisor.cli.app import ConfigOption, SetOption, app, fail, write_json

if TYPE_CHECKING:
    from actors.data.candles import CandleTable
    from config.models import Settings
    from supervisor.research.backtest_setup import DataSpec, EngineMode, ExitsMode, MarketCandles

data_app = typer.Typer(help="Market data: download, import and inspect candle files.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class ExitChoice(StrEnum):
    SIGNAL = "signal"
    MANAGED = "managed"


class EngineChoice(StrEnum):
    AUTO = "auto"
    FAST = "fast"
    DRIVER = "driver"


StrategyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--strategy", "-s", help="Strategy name from the config (repeatable; default: all enabled)."
    ),
]
DataOption = Annotated[
    list[str] | None,
    typer.Option(
        "--data",
        help="Candles of a market: MARKET=FILE (repeatable, e.g. binance:ETH/USDT=eth.csv.gz), or a plain "
        "FILE for the one market the strategies trade (.parquet, .csv[.gz], .json). Markets not given "
        "use replay.candles.",
    ),
]
ExitsOption = Annotated[
    ExitChoice | None,
    typer.Option(
        "--exits",
        help="signal: only the strategy's exit signal closes (managed=false); "
        "managed: the exit state machine. Default: as configured.",
    ),
]
GridOption = Annotated[
    list[str],
    typer.Option("--grid", help="Strategy parameter and its values, e.g. bb_std=1.5,2,2.5 (repeatable)."),
]
ObjectiveOption = Annotated[
    str, typer.Option("--objective", help="What to maximise: sharpe, sortino, total_return, ...")
]
WorkersOption = Annotated[
    int, typer.Option("--workers", help="Parallel Ray tasks; 1 runs serially in-process without Ray.")
]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="Ray cluster address (default: a local Ray instance).")
]
JsonOutOption = Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")]


def _time_ms(text: str, option: str) -> int:
    """Milliseconds since the epoch from an ISO date/time (UTC unless it says otherwise) or an integer."""
    from supervisor.research.performance import parse_iso_utc

    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    try:
        return parse_iso_utc(stripped)
    except ValueError:
        fail(f"{option}: expected a date like 2024-03-01 or 2024-03-01T12:00, or epoch ms; got {text!r}")


def _exits(choice: ExitChoice | None) -> ExitsMode | None:
    if choice is None:
        return None
    return "signal" if choice is ExitChoice.SIGNAL else "managed"


def _engine(choice: EngineChoice) -> EngineMode:
    if choice is EngineChoice.FAST:
        return "fast"
    if choice is EngineChoice.DRIVER:
        return "driver"
    return "auto"


def _load(path: Path) -> CandleTable:
    from actors.data.candles import load_table

    if not path.exists():
        fail(f"{path}: no such file")
    try:
        return load_table(path)
    except (ValueError, KeyError, OSError) as exc:
        fail(f"{path}: {exc}")


def _data_specs(data: list[str] | None) -> list[DataSpec]:
    from supervisor.research.backtest_setup import parse_data_spec

    return [parse_data_spec(text) for text in data or ()]


def _run_settings(config: Path | None, set_: list[str] | None, data: list[str] | None) -> Settings:
    """The config with its market patterns resolved against replay.candles and the ``--data`` markets
    (exit 2 naming every problem, as ``settings_or_exit``)."""
    from config.loader import ConfigError, load_settings

    markets = [market for market, _path in _data_specs(data) if market is not None]
    try:
        return load_settings(config, overrides=set_ or (), markets=markets)
    except ConfigError as exc:
        fail(str(exc))


def _progress(label: str) -> Any:
    from supervisor.research.report import ProgressBar

    return ProgressBar(label)


# --------------------------------------------------------------------------- data


@data_app.command("download")
def data_download(
    since: Annotated[str, typer.Option(help="First bar (UTC date/time or epoch ms), e.g. 2024-03-01.")],
    exchange: Annotated[str, typer.Option(help="ccxt exchange id.")] = "binance",
    symbol: Annotated[str, typer.Option(help="Market symbol.")] = "BTC/USDT",
    timeframe: Annotated[str, typer.Option(help="Bar size: 1m, 5m, 1h, 1d, ...")] = "1m",
    until: Annotated[str | None, typer.Option(help="End, exclusive (default: now).")] = None,
    out: Annotated[Path | None, typer.Option(help="Parquet file (resumed if it exists).")] = None,
    url: Annotated[
        str | None, typer.Option(help="REST base URL instead of the exchange's (sandbox, loopback).")
    ] = None,
) -> None:
    """Download candles with ccxt into Parquet (paginated, retried, resumable, cleaned, with provenance)."""
    import asyncio

    from actors.venues.binance.ccxt_client import make_exchange
    from supervisor.research.download import download_ohlcv, timeframe_ms

    try:
        step = timeframe_ms(timeframe)
    except ValueError as exc:
        fail(str(exc))
    since_ms = _time_ms(since, "--since")
    until_ms = None if until is None else _time_ms(until, "--until")
    if until_ms is not None and until_ms <= since_ms:
        fail("--until must be after --since")
    target = out or Path(f"{exchange}-{symbol.replace('/', '').replace(':', '')}-{timeframe}.parquet")
    try:
        client = make_exchange(exchange, rest_url=url)
    except ValueError as exc:
        fail(str(exc))
    bar = _progress("download")

    def on_page(_rows: int, cursor: int) -> None:
        end = until_ms if until_ms is not None else cursor + step
        bar.update(max(0, cursor - since_ms) // step, max(1, (end - since_ms) // step))

    async def go() -> Any:
        try:
            return await download_ohlcv(
                client, symbol, timeframe, since_ms, until_ms, target, on_page=on_page
            )
        finally:
            await client.close()

    try:
        report = asyncio.run(go())
    except Exception as exc:  # the download gave up: say why, exit 1
        bar.close()
        fail(f"download failed: {type(exc).__name__}: {exc}", code=1)
    bar.close()
    resumed = "" if report.resumed_from_ms is None else f", resumed from {report.resumed_from_ms}"
    retries = ", ".join(f"{k} x{v}" for k, v in report.retries.items()) or "none"
    typer.echo(
        f"{target}: {report.rows_fetched:,} rows fetched in {report.pages} page(s){resumed}; "
        f"{report.rows_in_file:,} rows in file; retries: {retries}"
    )


@data_app.command("import")
def data_import(
    file: Annotated[Path, typer.Argument(help="CSV (timestamp,open,high,low,close,volume) or ccxt JSON.")],
    out: Annotated[Path | None, typer.Option(help="Parquet file (default: FILE with .parquet).")] = None,
    forward_fill: Annotated[
        bool, typer.Option("--forward-fill", help="Fill gaps with flat zero-volume bars.")
    ] = False,
) -> None:
    """Clean a candle file (duplicates, zero-volume bars, flagged moves) into Parquet with its provenance."""
    from actors.data.candles import CandleTable, clean_table, write_parquet

    table = _load(file)
    target = out or file.with_suffix(".parquet")
    if target.resolve() == file.resolve():
        fail(f"{file} is already Parquet; give --out")
    provenance = {**table.provenance, "sha256": _sha256(file), "source": str(file.resolve())}
    cleaned, report = clean_table(
        CandleTable.from_columns(table.columns(), None, provenance), forward_fill=forward_fill
    )
    write_parquet(cleaned, target)
    typer.echo(
        f"{target}: {len(cleaned):,} bars from {len(table):,} rows; "
        f"duplicates removed {report['duplicates_removed']}, "
        f"zero-volume dropped {report['zero_volume_dropped']}, "
        f"flagged moves {report['flagged_moves']}, forward-filled {report['forward_filled']}"
    )


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@data_app.command("inspect")
def data_inspect(
    file: Annotated[Path, typer.Argument(help="A candle file: .parquet, .csv or .json.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Rows, span, gaps, duplicates, zero-volume bars and suspicious moves of a candle file."""
    from actors.data.candles import inspect_table
    from supervisor.research.performance import iso_utc

    table = _load(file)
    found = inspect_table(table)
    info = found.as_dict()
    info["file"] = str(file)
    info["start"] = None if found.start_ms is None else iso_utc(found.start_ms)
    info["end"] = None if found.end_ms is None else iso_utc(found.end_ms + found.interval_ms)
    info["flagged"] = int(table.flags.sum())
    info["provenance"] = table.provenance
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    lines = [
        f"{file}: {found.rows:,} rows of {found.interval_ms // 1000}s, {info['start']} to {info['end']}",
        f"  duplicates {found.duplicates:,}  zero-volume bars {found.zero_volume:,}  "
        f"gaps {len(found.gaps):,} ({found.missing_bars:,} missing bars)  "
        f"suspicious moves {len(found.suspicious_moves):,}  flagged in file {info['flagged']:,}",
    ]
    for after, missing in found.gaps[:5]:
        lines.append(f"  gap after {iso_utc(after)}: {missing:,} bar(s) missing")
    for ts, move in found.suspicious_moves[:5]:
        lines.append(f"  move at {iso_utc(ts)}: {move:+.2%}")
    if table.provenance:
        lines.append(f"  provenance: {json.dumps(table.provenance)}")
    typer.echo("\n".join(lines))


# --------------------------------------------------------------------------- backtest


@app.command()
def backtest(
    strategy: StrategyOption = None,
    data: DataOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    exits: ExitsOption = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write report.md and charts here.")] = None,
    json_out: JsonOutOption = None,
    trades: Annotated[Path | None, typer.Option("--trades", help="Write one CSV row per round trip.")] = None,
    engine: Annotated[
        EngineChoice,
        typer.Option(help="auto: fast path for candles (identical trades); driver: event by event."),
    ] = EngineChoice.AUTO,
) -> None:
    """Backtest strategies of the config on candles, or polymarket_lag on the bundled Polymarket day."""
    from supervisor.research.backtest import run_backtest
    from supervisor.research.backtest_setup import BacktestError

    settings = _run_settings(config, set_, data)
    bar = _progress("backtest")
    try:
        result = run_backtest(
            settings,
            strategies=strategy or (),
            data=_data_specs(data),
            exits=_exits(exits),
            engine=_engine(engine),
            progress=bar.update,
        )
    except BacktestError as exc:
        bar.close()
        fail(str(exc))
    bar.close()
    typer.echo("\n".join(result.summary_lines()))
    if json_out is not None:
        typer.echo(f"json: {result.write_json(json_out)}")
    if trades is not None:
        typer.echo(f"trades: {result.write_trades(trades)}")
    if report is not None:
        written = result.write_report(report)
        typer.echo(f"report: {written[0]} ({len(written) - 1} charts)")


# --------------------------------------------------------------------------- walk-forward and sweep


def _research_inputs(
    config: Path | None, set_: list[str] | None, data: list[str] | None, strategy: str
) -> tuple[Any, MarketCandles]:
    """The settings of ``strategy`` alone on the run's markets (``--data``, else all it trades), and
    their candles."""
    from supervisor.research.backtest_setup import (
        BacktestError,
        candle_files,
        is_polymarket,
        load_market_candles,
        select_strategies,
    )

    settings = _run_settings(config, set_, data)
    try:
        chosen, _notes = select_strategies(settings, [strategy])
        if is_polymarket(chosen.strategies[0]):
            fail("walk-forward and sweeps run on candle strategies, not polymarket_lag")
        run = candle_files(chosen, _data_specs(data))
        candles = load_market_candles(run.files)
    except BacktestError as exc:
        fail(str(exc))
    return run.settings, candles


@app.command()
def walkforward(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="The strategy to optimise.")],
    grid: GridOption,
    train: Annotated[str, typer.Option(help="Train window length, e.g. 14d.")] = "14d",
    test: Annotated[str, typer.Option(help="Test window length, e.g. 7d.")] = "7d",
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Train from the data's start every time.")
    ] = False,
    objective: ObjectiveOption = "sharpe",
    data: DataOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    exits: ExitsOption = None,
    json_out: JsonOutOption = None,
    workers: WorkersOption = 2,
    address: AddressOption = None,
) -> None:
    """Optimise on each train window, trade the choice out of sample on the next, stitch the results."""
    from supervisor.research.backtest_setup import BacktestError
    from supervisor.research.walkforward import (
        WalkForwardError,
        executor_for,
        parse_duration,
        parse_grid,
        walk_forward,
    )

    settings, table = _research_inputs(config, set_, data, strategy)
    try:
        parsed = parse_grid(grid)
        train_ms, test_ms = parse_duration(train), parse_duration(test)
        executor = executor_for(workers, address)
    except WalkForwardError as exc:
        fail(str(exc))
    try:
        result = walk_forward(
            settings,
            table,
            strategy=strategy,
            grid=parsed,
            train_ms=train_ms,
            test_ms=test_ms,
            anchored=anchored,
            objective=objective,
            exits=_exits(exits),
            executor=executor,
        )
    except BacktestError as exc:  # WalkForwardError included
        fail(str(exc))
    finally:
        executor.close()
    typer.echo("\n".join(result.summary_lines()))
    if json_out is not None:
        typer.echo(f"json: {write_json(json_out, result.as_json_dict())}")


@app.command()
def sweep(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="The strategy to sweep.")],
    grid: GridOption,
    objective: ObjectiveOption = "sharpe",
    data: DataOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    exits: ExitsOption = None,
    json_out: JsonOutOption = None,
    workers: WorkersOption = 2,
    address: AddressOption = None,
) -> None:
    """Every grid point over the whole data (in sample): a map of the parameters, not a forecast."""
    from supervisor.research.backtest_setup import BacktestError
    from supervisor.research.walkforward import WalkForwardError, executor_for, parse_grid
    from supervisor.research.walkforward import sweep as run_sweep

    settings, table = _research_inputs(config, set_, data, strategy)
    try:
        parsed = parse_grid(grid)
        executor = executor_for(workers, address)
    except WalkForwardError as exc:
        fail(str(exc))
    try:
        result = run_sweep(
            settings,
            table,
            strategy=strategy,
            grid=parsed,
            objective=objective,
            exits=_exits(exits),
            executor=executor,
        )
    except BacktestError as exc:  # WalkForwardError included
        fail(str(exc))
    finally:
        executor.close()
    typer.echo("\n".join(result.summary_lines()))
    if json_out is not None:
        typer.echo(f"json: {write_json(json_out, result.as_json_dict())}")
