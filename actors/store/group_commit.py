"""Group commit: the writes that reach the store while it is busy share one durable transaction.

Every durable write used to be its own LMDB commit (an fsync: 0.2 ms idle, about 8 ms on a loaded
disk), so ten positions checkpointing on the same price queued ten fsyncs behind each other on the
one writer. Here a write joins the group that the next turn of the event loop commits: writes that
arrive while the loop is free commit alone, as before (no added wait); writes that piled up while it
was busy commit together. Each caller still returns only once its own write is durable.

A group whose transaction fails (nothing of it was written) is run again one write at a time, so a
bad write fails its own caller only and the others commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

Tx = TypeVar("Tx")
Write = Callable[[Tx], Any]


class GroupCommitter(Generic[Tx]):
    """Queues writes (functions of one write transaction) and commits each turn's queue as one."""

    def __init__(
        self,
        run_all: Callable[[Sequence[Write[Tx]]], list[Any]],
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        """``run_all``: the writes in one durable transaction, their results in order (a failed
        attempt writes nothing); ``on_commit(writes, seconds)``: after each turn's commit."""
        self._run_all = run_all
        self._on_commit = on_commit
        self._queue: list[tuple[Write[Tx], asyncio.Future[Any]]] = []
        self._scheduled = False
        self.commits = 0
        """Transactions run (a group, or each write of a group that failed)."""
        self.writes = 0
        self.largest_group = 0

    async def write(self, fn: Write[Tx]) -> Any:
        """``fn(tx)`` committed durably (alone or with the writes queued beside it); its result."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._queue.append((fn, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # after the requests already waiting to run: they join
        return await done

    def _flush(self) -> None:
        self._scheduled = False
        group, self._queue = self._queue, []
        if not group:
            return
        started = asyncio.get_running_loop().time()
        self._commit(group)
        self.writes += len(group)
        self.largest_group = max(self.largest_group, len(group))
        if self._on_commit is not None:
            self._on_commit(len(group), asyncio.get_running_loop().time() - started)

    def _commit(self, group: list[tuple[Write[Tx], asyncio.Future[Any]]]) -> None:
        """The group in one transaction; if that fails and it holds several writes, each again in
        its own, so a bad write fails only its own caller (a single one is not run twice)."""
        try:
            results = self._run_all([fn for fn, _ in group])
        except Exception as exc:
            if len(group) > 1:
                for entry in group:
                    self._commit([entry])
                return
            self.commits += 1
            _settle(group[0][1], error=exc)
            return
        self.commits += 1
        for (_, done), result in zip(group, results, strict=True):
            _settle(done, result)


def _settle(done: asyncio.Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """Answer a waiting writer, unless it has gone (its call was cancelled)."""
    if done.cancelled():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
