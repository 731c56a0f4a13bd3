"""Slow work a strategy core may hand off (a model fit) without giving up determinism.

A core decides *when* work starts and *at which bar* its result is first used; a shell decides
*where* it runs. The default runs it inline (a completed future), so backtests, the in-process
driver and a restore need nothing; the strategy actor hands in a worker thread's ``submit`` and,
before a candle that needs an unfinished result, awaits it (``waits_for``) so neither its event
loop nor the core ever blocks on it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

from actors.domain.model import Candle

T = TypeVar("T")


class Submit(Protocol):
    """Runs ``job`` somewhere and returns its future (``ThreadPoolExecutor.submit`` fits)."""

    def __call__(self, job: Callable[[], T], /) -> Future[T]: ...


def run_inline(job: Callable[[], T], /) -> Future[T]:
    """The default :class:`Submit`: the job runs now, its outcome (value or exception) kept."""
    future: Future[T] = Future()
    try:
        future.set_result(job())
    except Exception as exc:
        future.set_exception(exc)
    return future


@runtime_checkable
class Offloading(Protocol):
    """A core (or a book of cores) whose slow work can run elsewhere."""

    def offload_with(self, submit: Submit) -> None:
        """Where its later jobs run (jobs already started stay where they are)."""
        ...

    def waits_for(self, candle: Candle) -> list[Future[Any]]:
        """Unfinished jobs whose results ``on_candle(candle)`` would take: await these first."""
        ...
