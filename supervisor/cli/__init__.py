"""The `raytrader` command line: one entry point for research, paper, live and operations.

Each area registers its commands on the shared app from its own module; importing them here
is what makes them appear. Heavy imports stay inside command bodies so `--help` is instant.
"""

from __future__ import annotations

import sys

from supervisor.cli import (
    chaos,  # noqa: F401
    config,  # noqa: F401  (registers commands)
    research,  # noqa: F401
    runtime,  # noqa: F401
    sandbox,  # noqa: F401
)
from supervisor.cli.app import app


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
