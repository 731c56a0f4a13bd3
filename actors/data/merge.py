"""Several live sources read as one stream, each item as soon as its source yields it.

Why: a feed actor reads one async iterator, but a market can need two venue streams at once (a
Polymarket feed's books and the Chainlink reference its strategy prices against); polling one
with a timeout between reads of the other would delay every item of the second by that timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


async def merge_streams(*sources: AsyncIterator[T], buffer: int = 1024) -> AsyncIterator[T]:
    """Items of every source in arrival order, until all end; a source that raises ends the merge
    with its error. ``buffer`` bounds what may wait unread (a slow reader slows the sources)."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=buffer)

    async def pump(source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                await queue.put(item)
        except Exception as exc:  # handed to the reader, which raises it (cancellation is not)
            await queue.put(exc)
            return
        await queue.put(_DONE)

    tasks = [asyncio.create_task(pump(s)) for s in sources]
    running = len(tasks)
    try:
        while running:
            item = await queue.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield item  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for source in sources:
            closer = getattr(source, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
