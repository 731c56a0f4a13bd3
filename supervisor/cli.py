"""The `raytrader` command line: one entry point for research, paper, live and operations."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="raytrader",
    help="A supervised, crash-safe algorithmic trading runtime on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (default: config/default.toml).")
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a setting: key.path=value (repeatable).")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.command()
def ev(
    entry: Annotated[float, typer.Option(help="Entry price.")] = 0.45,
    stake: Annotated[float, typer.Option(help="Money committed to the trade.")] = 100.0,
    win_rate: Annotated[float, typer.Option(help="Share of trades that reach both targets.")] = 0.55,
    config: ConfigOption = None,
) -> None:
    """Expected value of the configured exit plan (targets, stop) per trade."""
    from actors.expected_value import exit_plan_ev, format_ev
    from config.loader import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not 0.0 <= win_rate <= 1.0:
        raise _fail("--win-rate must be between 0 and 1")
    result = exit_plan_ev(Decimal(str(entry)), Decimal(str(stake)), win_rate, settings.exits)
    typer.echo(format_ev(result))


@config_app.command("show")
def config_show(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Print the effective settings (file + environment + --set), secrets masked."""
    from config.loader import ConfigError, dump_settings, load_settings

    try:
        settings = load_settings(config, overrides=set_ or ())
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    typer.echo(dump_settings(settings))


@config_app.command("check")
def config_check(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Validate a config file; exit 2 with every problem listed if it is wrong."""
    from config.loader import ConfigError, load_settings

    try:
        load_settings(config, overrides=set_ or ())
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    typer.echo("config ok")


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
