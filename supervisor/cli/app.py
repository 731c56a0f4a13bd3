"""The shared Typer application and option types; command modules register on ``app``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from config.models import Settings

app = typer.Typer(
    name="raytrader",
    help="A supervised, crash-safe algorithmic trading runtime on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (default: config/default.toml).")
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a setting: key.path=value (repeatable).")
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a clear error to stderr and exit non-zero (2: bad input; 1: the run failed)."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def write_json(path: Path, data: Any) -> Path:
    """A command's machine-readable result: parents created, strict JSON (no NaN), newline-terminated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return path


def settings_or_exit(config: Path | None, overrides: list[str] | None = None) -> Settings:
    """Load settings or exit 2 with every problem named (file, field path, expectation)."""
    from config.loader import ConfigError, load_settings

    try:
        return load_settings(config, overrides=overrides or ())
    except ConfigError as exc:
        fail(str(exc))
