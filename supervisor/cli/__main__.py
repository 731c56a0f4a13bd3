"""``python -m supervisor.cli``: the `raytrader` command without the console script."""

from supervisor.cli import main

main()
