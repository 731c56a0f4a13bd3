"""`raytrader chaos`: inject seeded faults into the default portfolio and judge the invariants."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from supervisor.cli.app import app, fail, write_json


@app.command()
def chaos(
    duration: Annotated[float, typer.Option(help="Seconds of trading under faults.")] = 300.0,
    seed: Annotated[int, typer.Option(help="The fault schedule's seed (same seed, same schedule).")] = 1,
    faults: Annotated[str | None, typer.Option(help="Comma-separated fault kinds (default: all).")] = None,
    per_minute: Annotated[float, typer.Option("--per-minute", help="Mean faults per minute.")] = 15.0,
    workers: Annotated[int, typer.Option(help="Ray worker nodes besides the head.")] = 2,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Where state and logs go.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    schedule_only: Annotated[
        bool, typer.Option("--schedule-only", help="Print the schedule and exit.")
    ] = False,
) -> None:
    """Run the default paper portfolio (four strategies, Binance and Polymarket on the bundled data)
    under seeded faults; print the report and a summary; exit 1 on any violation."""
    from ops.chaos import ChaosRun
    from ops.chaos_schedule import FAULT_KINDS, schedule

    kinds = tuple(k.strip() for k in faults.split(",")) if faults else FAULT_KINDS
    try:
        events = schedule(seed, duration, kinds, per_minute)
    except ValueError as exc:
        fail(str(exc))
    if schedule_only:
        typer.echo(json.dumps([e.__dict__ for e in events], indent=2))
        return
    directory = work_dir or Path(tempfile.mkdtemp(prefix=f"raytrader-chaos-{seed}-"))
    report = ChaosRun(seed, duration, kinds, directory, workers=workers, per_minute=per_minute).run()
    result = report.as_dict()
    typer.echo(json.dumps(result, indent=2))
    if json_out is not None:
        write_json(json_out, result)
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)
