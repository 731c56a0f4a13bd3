"""Studies the system in one process.

Driver, backtests, walk-forward, sweeps, performance, reports, downloads.
"""
