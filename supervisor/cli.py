"""The `raytrader` command line: one entry point for research, paper, live and operations.

Each area registers its commands on the shared app from its own module; importing them here
is what makes them appear. Heavy imports stay inside command bodies so `--help` is instant.
"""

from __future__ import annotations

import sys

from supervisor import (
    cmd_chaos,  # noqa: F401
    cmd_config,  # noqa: F401  (registers commands)
    cmd_research,  # noqa: F401
    cmd_runtime,  # noqa: F401
    cmd_sandbox,  # noqa: F401
)
from supervisor.cli_app import app


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
