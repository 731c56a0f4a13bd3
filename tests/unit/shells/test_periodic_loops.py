"""The periodic loops every actor shell runs (exit timers, fill polls, checkpoints)."""

from __future__ import annotations

import asyncio

from actors.shells.base import ActorShell
from config.loader import load_settings


class _Shell(ActorShell):
    kind = "position"

    def __init__(self) -> None:
        self._shell_init("position:p1", load_settings(None, env={}))


def test_periodic_loop_survives_an_exception_and_counts_it() -> None:
    """Issue 10, defect 6: a position's timer loop had no try/except and died on the first
    exception, so its time exit and entry timeout never ran again."""
    shell = _Shell()
    turns: list[int] = []

    async def body() -> bool:
        turns.append(len(turns))
        if len(turns) == 1:
            raise RuntimeError("a bad turn")
        return len(turns) == 3

    asyncio.run(asyncio.wait_for(shell._every("exit timers", lambda: 0.0, body), timeout=10))
    assert turns == [0, 1, 2]
    deltas = [d for d in shell.metrics.drain() if d.type == "counter"]
    counted = {(d.name, dict(d.labels).get("loop")): d.values[0] for d in deltas}
    assert counted == {("raytrader_loop_errors_total", "exit timers"): 1.0}


def test_periodic_loop_ends_when_its_body_says_done() -> None:
    shell = _Shell()
    turns: list[int] = []

    async def body() -> bool:
        turns.append(1)
        return True

    asyncio.run(asyncio.wait_for(shell._every("poll", lambda: 0.0, body), timeout=10))
    assert turns == [1]
