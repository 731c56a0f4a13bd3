"""`raytrader run | status | stop | kill-switch | resume | watch | trades | performance | state`."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from config.models import Mode, Settings
from supervisor.cli.app import ConfigOption, SetOption, app, fail, settings_or_exit, write_json

state_app = typer.Typer(help="Inspect, export and import the LMDB state store.", no_args_is_help=True)
app.add_typer(state_app, name="state")

AddressOption = Annotated[
    str | None,
    typer.Option("--address", help="Ray cluster address (e.g. auto); default: a local Ray instance."),
]
StateDirOption = Annotated[Path | None, typer.Option("--state-dir", help="Where the LMDB store lives.")]


def _settings(
    config: Path | None, overrides: list[str] | None, state_dir: Path | None = None, **flags: Any
) -> Settings:
    extra = list(overrides or [])
    if state_dir is not None:
        extra.append(f"state_dir={json.dumps(str(state_dir.resolve()))}")  # a flag is relative to the cwd
    for key, value in flags.items():
        if value is not None:
            extra.append(f"{key}={json.dumps(value) if isinstance(value, str) else value}")
    return settings_or_exit(config, extra)


def _attach(address: str, settings: Settings) -> None:
    """Join the running system's Ray cluster (a process that has joined already stays as it is)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, namespace=settings.runtime.namespace, logging_level=logging.ERROR)


def _render_factory(live: Any, console: Any, tty: bool) -> Any:
    from rich.table import Table

    last_line = [0.0]

    def render(snapshot: dict[str, Any]) -> None:
        portfolio = snapshot.get("portfolio", {})
        headline = (
            f"equity {portfolio.get('equity', '?')}  realised {portfolio.get('realized_pnl', '?')}  "
            f"unrealised {portfolio.get('unrealized_pnl', '?')}  "
            f"positions {len(snapshot.get('positions', []))}  "
            f"restarts {snapshot.get('restarts', 0)}  orphans {len(snapshot.get('orphans', []))}  "
            f"stuck {len(snapshot.get('stuck', []))}  halted {portfolio.get('halted') or 'no'}"
        )
        if not tty:
            if time.monotonic() - last_line[0] >= 10:
                last_line[0] = time.monotonic()
                console.print(headline)
            return
        held: dict[str, list[str]] = {}
        for position in snapshot.get("positions", []):
            detail = position.get("detail", {})
            held.setdefault(str(detail.get("market", "?")), []).append(
                f"{detail.get('strategy', '?')} {detail.get('status', '?')}"
            )
        if held:
            headline += "\nby market: " + "; ".join(f"{m}: {', '.join(v)}" for m, v in sorted(held.items()))
        table = Table(title="raytrader — " + headline, expand=True)
        for column in ("actor", "kind", "heartbeat age s", "restarts", "state"):
            table.add_column(column)
        for actor in snapshot.get("actors", []):
            detail = actor.get("detail", {})
            state = ", ".join(
                f"{k}={v}"
                for k, v in detail.items()
                if k
                in (
                    "status",
                    "position",
                    "done",
                    "signals",
                    "open_orders",
                    "open_qty",
                    "equity",
                    "fills",
                    "writes",
                )
                and not isinstance(v, list)
            )
            table.add_row(
                actor["name"], actor["kind"], str(actor.get("heartbeat_age_s")), str(actor["restarts"]), state
            )
        live.update(table)

    return render


@app.command()
def run(
    config: ConfigOption = None,
    set_: SetOption = None,
    mode: Annotated[Mode | None, typer.Option("--mode", help="paper (default) or live.")] = None,
    speed: Annotated[str | None, typer.Option(help="Replay speed multiplier, or 'max'.")] = None,
    live_data: Annotated[
        bool,
        typer.Option("--live-data", help="Paper trade on the venues' live feeds instead of replay files."),
    ] = False,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    state_dir: StateDirOption = None,
    address: AddressOption = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Prometheus port (0: any free).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the final summary here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write report.md and charts here.")] = None,
    confirm_live: Annotated[
        bool, typer.Option("--confirm-live", help="Confirm that live trading is intended.")
    ] = False,
    clear_kill_switch: Annotated[
        bool,
        typer.Option("--clear-kill-switch", help="Clear a kill switch latched in this state before trading."),
    ] = False,
) -> None:
    """Run the supervised multi-strategy portfolio (paper on bundled replay data by default)."""
    import ray
    from rich.console import Console
    from rich.live import Live

    from supervisor.control import runtime

    flags: dict[str, Any] = {"mode": mode.value if mode else None, "metrics.port": metrics_port}
    if speed is not None:
        flags["replay.speed"] = speed if speed == "max" else float(speed)
    if live_data:
        flags["feeds"] = "live"
    settings = _settings(config, set_, state_dir, **flags)
    if settings.mode is Mode.LIVE:
        problems = runtime.live_problems(settings, confirmed=confirm_live)
        if problems:
            fail("refusing to trade live:\n- " + "\n- ".join(problems))
    console = Console(stderr=True)
    runtime.connect(address, settings)
    try:
        started = runtime.start_system(settings, clear_kill_switch=clear_kill_switch)
        if started.get("kill_switch_latched"):
            console.print(
                "kill switch LATCHED: no entries, positions frozen; "
                "clear it with `raytrader resume` or `raytrader run --clear-kill-switch`"
            )
        console.print(
            f"raytrader {settings.mode.value}: {len(started['actors'])} actors; "
            f"metrics at http://{settings.metrics.host}:{started['metrics_port']}/metrics; "
            f"state in {settings.state_dir}"
        )
        tty = sys.stderr.isatty()
        with (
            Live(console=console, refresh_per_second=2, transient=False)
            if tty
            else contextlib.nullcontext() as live
        ):
            reason, snapshot = runtime.watch(
                settings, duration_s=duration, render=_render_factory(live, console, tty)
            )
        console.print(f"stopping: {reason}")
        stop = runtime.stop_system(
            settings, cancel_orders=settings.runtime.cancel_on_stop, teardown=address is None
        )
        result = runtime.summary(settings, snapshot, reason, stop)
        console.print(json.dumps(result, indent=2))
        if json_out is not None:
            write_json(json_out, result)
        if report is not None:
            _write_report(settings, report)
    finally:
        if address is None:
            ray.shutdown()


def _write_report(settings: Settings, out: Path) -> None:
    """The backtest's report, from the run's trade log (equity stepped at each close, per minute)."""
    import numpy as np

    from supervisor.control.runtime import read_trades
    from supervisor.research.performance import compute_stats, round_trips_csv
    from supervisor.research.report import write_report

    trips = sorted(read_trades(settings), key=lambda t: t.exit_time_ms)
    capital = settings.portfolio.initial_capital
    if not trips:
        start = end = 0
    else:
        start = min(t.entry_time_ms for t in trips) // 60_000 * 60_000
        end = max(t.exit_time_ms for t in trips) // 60_000 * 60_000 + 60_000
    grid = np.arange(start, end + 60_000, 60_000, dtype=np.int64)
    exits = np.array([t.exit_time_ms for t in trips], dtype=np.int64)
    pnl = np.cumsum([float(t.pnl) for t in trips]) if trips else np.zeros(0)
    idx = np.searchsorted(exits, grid, side="right") - 1
    equity = float(capital) + np.where(idx >= 0, pnl[np.clip(idx, 0, None)] if len(pnl) else 0.0, 0.0)
    fees = sum((t.fees for t in trips), Decimal(0))
    stats = compute_stats(grid, equity, 60_000, np.zeros(len(grid)), np.zeros(0), trips, capital, fees)
    out.mkdir(parents=True, exist_ok=True)
    round_trips_csv(trips, out / "trades.csv")
    (out / "stats.json").write_text(json.dumps(stats.as_json_dict(), indent=2))
    write_report(
        out,
        stats,
        grid,
        equity,
        np.zeros(0),
        trips,
        grid,
        equity,
        "raytrader paper run",
        ["Equity is realised P&L stepped at each round trip's close (no marks between)."],
    )


@app.command()
def status(
    config: ConfigOption = None,
    set_: SetOption = None,
    address: Annotated[str, typer.Option("--address", help="Ray cluster address.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Actors, heartbeat ages, restarts, positions, open orders and P&L of a running system."""

    from supervisor.control import runtime
    from supervisor.control.status import status_lines

    settings = _settings(config, set_)
    try:
        _attach(address, settings)
        snapshot = runtime.status(settings)
    except (ConnectionError, RuntimeError) as exc:
        fail(str(exc), code=1)
    snapshot["paper_trades"] = runtime.paper_trade_progress(settings)
    if as_json:
        typer.echo(json.dumps(snapshot, indent=2, default=str))
        return
    for line in status_lines(snapshot):
        typer.echo(line)


@app.command()
def stop(
    config: ConfigOption = None,
    address: Annotated[str, typer.Option("--address", help="Ray cluster address.")] = "auto",
    keep_orders: Annotated[
        bool, typer.Option("--keep-orders", help="Leave resting orders at the venue.")
    ] = False,
) -> None:
    """Stop a running system cleanly (feeds paused, state flushed, orders cancelled)."""

    from supervisor.control import runtime

    settings = _settings(config, None)
    try:
        _attach(address, settings)
        result = runtime.stop_system(settings, cancel_orders=not keep_orders, teardown=True)
    except (ConnectionError, RuntimeError) as exc:
        fail(str(exc), code=1)
    typer.echo(json.dumps(result, default=str))


@app.command("kill-switch")
def kill_switch(
    config: ConfigOption = None,
    set_: SetOption = None,
    address: Annotated[str, typer.Option("--address", help="Ray cluster address.")] = "auto",
    flatten: Annotated[
        bool,
        typer.Option(
            "--flatten",
            help="Then close every open position at market within exits.max_close_slippage_pct "
            "(a marketable limit sell at that cap below the mark; the order model is limit-only).",
        ),
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            help="With --flatten: wait this many seconds for every position to close; exit 1 if not."
        ),
    ] = 0.0,
) -> None:
    """Cancel every open order and halt new entries now; latched until `raytrader resume`.

    Without --flatten positions stay as they are, frozen (no new orders, their exits cancelled).
    """
    import ray

    from supervisor.control import runtime

    settings = _settings(config, set_)
    try:
        _attach(address, settings)
        started = time.monotonic()
        call = runtime.supervisor_handle(settings).kill_switch.remote("kill switch", flatten)
        result = ray.get(call, timeout=60 if flatten else 10)
        result["seconds"] = round(time.monotonic() - started, 3)
        if flatten and wait > 0:
            result["open_positions"] = _wait_flat(settings, wait)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        fail(str(exc), code=1)
    typer.echo(json.dumps(result))
    if result.get("flatten_failed") or result.get("open_positions"):
        raise typer.Exit(1)


def _wait_flat(settings: Settings, wait_s: float) -> list[str]:
    """Poll until no position actor reports itself open; the ones still open after ``wait_s``."""
    from supervisor.control import runtime

    deadline = time.monotonic() + wait_s
    while True:
        positions = runtime.status(settings)["positions"]
        left = sorted(p["name"] for p in positions if p["detail"].get("status") != "closed")
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.5)


@app.command("watch")
def watch_command(
    config: ConfigOption = None,
    set_: SetOption = None,
    state_dir: StateDirOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Look once and exit: 0 alive or stopped cleanly, 1 silent.")
    ] = False,
    silent_after: Annotated[
        float | None,
        typer.Option(help="Seconds without a write that count as silence (default: notify.silent_after_s)."),
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between looks when looping.")] = 10.0,
) -> None:
    """Alert (log + notifier) when the whole system is silent, from outside Ray.

    Reads the health record the supervisor writes to the LMDB store every tick, read-only; no
    Ray needed, so it still speaks when the cluster is gone. Loops until Ctrl-C; --once for cron.
    """
    import asyncio

    from supervisor.control.notifier import Notifier
    from supervisor.control.watchdog import Verdict, watch

    settings = _settings(config, set_, state_dir)
    store = Path(settings.state_dir) / "store"  # actors.shells.store.store_path, without its Ray import
    limit = silent_after if silent_after is not None else settings.notify.silent_after_s
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def looking() -> Verdict:
        notifier = Notifier(settings.notify)
        try:
            return await watch(store, notifier, silent_after_s=limit, interval_s=interval, once=once)
        finally:
            await notifier.close()

    try:
        verdict = asyncio.run(looking())
    except KeyboardInterrupt:
        return
    typer.echo(verdict.line())
    if verdict.silent:
        raise typer.Exit(1)


@app.command()
def resume(
    config: ConfigOption = None,
    set_: SetOption = None,
    address: Annotated[str, typer.Option("--address", help="Ray cluster address.")] = "auto",
) -> None:
    """Clear a latched kill switch: entries allowed again, positions unfrozen and re-armed."""
    import ray

    from supervisor.control import runtime

    settings = _settings(config, set_)
    try:
        _attach(address, settings)
        result = ray.get(runtime.supervisor_handle(settings).resume.remote(), timeout=30)
    except (ConnectionError, RuntimeError) as exc:
        fail(str(exc), code=1)
    typer.echo(json.dumps(result))


def _parse_since(since: str | None) -> int | None:
    if since is None:
        return None
    if since.isdigit():
        return int(since)
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        fail(f"--since: expected ISO 8601 (2024-03-01 or 2024-03-01T12:00) or epoch ms, got {since!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.command()
def trades(
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    strategy: Annotated[str | None, typer.Option(help="Only this strategy.")] = None,
    since: Annotated[str | None, typer.Option(help="Closed at or after (ISO 8601 UTC or epoch ms).")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Export the round trips to CSV.")] = None,
) -> None:
    """List (and export) the round trips in the trade log."""
    from supervisor.control.runtime import read_trades
    from supervisor.research.performance import iso_utc, round_trips_csv

    settings = _settings(config, None, state_dir)
    since_ms = _parse_since(since)
    rows = [
        t
        for t in read_trades(settings)
        if (strategy is None or t.strategy == strategy) and (since_ms is None or t.exit_time_ms >= since_ms)
    ]
    if csv is not None:
        round_trips_csv(rows, csv)
        typer.echo(f"{len(rows)} round trips written to {csv}")
        return
    for t in rows:
        typer.echo(
            f"{iso_utc(t.entry_time_ms)} -> {iso_utc(t.exit_time_ms)} {t.strategy:18} {t.market:24} "
            f"qty {t.qty} entry {t.entry_price} exit {t.exit_price} {t.exit_reason.value:11} pnl {t.pnl}"
        )
    typer.echo(f"{len(rows)} round trips")


@app.command()
def performance(config: ConfigOption = None, state_dir: StateDirOption = None) -> None:
    """Return, win rate, P&L by strategy and by exit reason, from the trade log."""
    from supervisor.control.runtime import read_trades

    settings = _settings(config, None, state_dir)
    rows = read_trades(settings)
    capital = settings.portfolio.initial_capital
    total = sum((t.pnl for t in rows), Decimal(0))
    wins = sum(1 for t in rows if t.pnl > 0)
    typer.echo(f"round trips {len(rows)}  realised P&L {total}  return {total / capital:.4%}")
    typer.echo(f"win rate {wins / len(rows):.1%}" if rows else "win rate n/a")
    for title, key in (("strategy", "strategy"), ("exit reason", "exit_reason")):
        groups: dict[str, list[Decimal]] = {}
        for t in rows:
            label = getattr(t, key)
            groups.setdefault(str(getattr(label, "value", label)), []).append(t.pnl)
        typer.echo(f"by {title}:")
        for label, values in sorted(groups.items()):
            typer.echo(f"  {label:18} trades {len(values):5}  pnl {sum(values, Decimal(0))}")


@state_app.command("inspect")
def state_inspect(config: ConfigOption = None, state_dir: StateDirOption = None) -> None:
    """Counts per kind, schema version and LMDB statistics."""
    from actors.shells.store import store_path
    from actors.store.lmdb_store import StateStore

    settings = _settings(config, None, state_dir)
    path = store_path(settings)
    if not path.exists():
        fail(f"no state store at {path}", code=1)
    with StateStore(path, readonly=True) as db:
        typer.echo(json.dumps(db.inspect(), indent=2, default=str))


@state_app.command("export")
def state_export(
    out: Annotated[Path, typer.Argument(help="JSON-lines file to write.")],
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Every record as JSON lines (a backup a person can read)."""
    from actors.shells.store import store_path
    from actors.store.lmdb_store import StateStore

    settings = _settings(config, None, state_dir)
    path = store_path(settings)
    if not path.exists():
        fail(f"no state store at {path}", code=1)
    with StateStore(path, readonly=True) as db:
        count = db.export_json(out)
    typer.echo(f"{count} records written to {out}")


@state_app.command("import")
def state_import(
    src: Annotated[Path, typer.Argument(help="JSON-lines file from `state export`.")],
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    replace: Annotated[bool, typer.Option(help="Replace a non-empty store.")] = False,
) -> None:
    """Load a backup into the store (refuses a non-empty store unless --replace)."""
    from actors.shells.store import store_path
    from actors.store.lmdb_store import StateStore, StoreError

    settings = _settings(config, None, state_dir)
    try:
        with StateStore(store_path(settings)) as db:
            count = db.import_json(src, replace=replace)
    except StoreError as exc:
        fail(str(exc), code=1)
    typer.echo(f"{count} records imported into {store_path(settings)}")
