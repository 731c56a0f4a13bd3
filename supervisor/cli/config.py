"""`raytrader config ...` and `raytrader ev`: look at settings and the exit plan's arithmetic."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from supervisor.cli.app import ConfigOption, SetOption, app, fail, settings_or_exit

config_app = typer.Typer(help="Inspect and validate the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.command()
def ev(
    entry: Annotated[float, typer.Option(help="Entry price.")] = 0.45,
    stake: Annotated[float, typer.Option(help="Money committed to the trade.")] = 100.0,
    win_rate: Annotated[float, typer.Option(help="Share of trades that reach both targets.")] = 0.55,
    config: ConfigOption = None,
) -> None:
    """Expected value of the configured exit plan (targets, stop) per trade."""
    from actors.core.expected_value import exit_plan_ev, format_ev

    if not 0.0 <= win_rate <= 1.0:
        fail("--win-rate must be between 0 and 1")
    if entry <= 0 or stake <= 0:
        fail("--entry and --stake must be positive")
    settings = settings_or_exit(config)
    result = exit_plan_ev(Decimal(str(entry)), Decimal(str(stake)), win_rate, settings.exits)
    typer.echo(format_ev(result))


@config_app.command("show")
def config_show(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Print the effective settings (file + environment + --set), secrets masked."""
    from config.dump import dump_settings

    typer.echo(dump_settings(settings_or_exit(config, set_)))


@config_app.command("check")
def config_check(
    config: ConfigOption = None,
    set_: SetOption = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="Resolve and print every live endpoint; name the secrets still missing."),
    ] = False,
) -> None:
    """Validate a config; exit 2 with every problem listed if it is wrong.

    With ``--live``: the venues' REST and websocket endpoints as the gateways will use them,
    and the secrets live trading still lacks (exit 1 while any is missing).
    """
    if not live:
        settings_or_exit(config, set_)
        typer.echo("config ok")
        return
    from actors.domain.topology import topology
    from actors.venues.factory import resolve_endpoints
    from config.loader import env_var

    # Secrets are checked here, by name, rather than refused by the loader as a live run would.
    settings = settings_or_exit(config, [*(set_ or []), 'mode="paper"'])
    venues = list(topology(settings).venues)
    for venue in venues:
        ends = resolve_endpoints(settings, venue)
        typer.echo(f"{venue:11} rest {ends.rest_url}")
        typer.echo(f"{'':11} ws   {ends.ws_url}")
        if ends.prices_url is not None:
            typer.echo(f"{'':11} rtds {ends.prices_url}")
    missing = settings.missing_live_secrets()
    typer.echo(f"live.confirm {str(settings.live.confirm).lower()}")
    if not missing:
        typer.echo("secrets: all present")
        return
    for name in missing:
        var = env_var(name)
        typer.echo(f"missing {name}: set {var} or {var}_FILE")
    raise typer.Exit(1)
