"""Two live sources read as one stream: every item of each, in its own order, as it comes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from actors.data.merge import merge_streams


async def _items(name: str, n: int, gate: asyncio.Event | None = None) -> AsyncIterator[str]:
    for i in range(n):
        if gate is not None and i == 1:
            await gate.wait()
        yield f"{name}{i}"


async def test_merged_streams_deliver_every_item_of_each_in_its_own_order() -> None:
    got = [x async for x in merge_streams(_items("a", 50), _items("b", 30))]
    assert [x for x in got if x[0] == "a"] == [f"a{i}" for i in range(50)]
    assert [x for x in got if x[0] == "b"] == [f"b{i}" for i in range(30)]


async def test_a_waiting_source_does_not_hold_back_the_other() -> None:
    gate = asyncio.Event()
    merged = merge_streams(_items("slow", 3, gate), _items("fast", 5))
    seen = []
    async for item in merged:
        seen.append(item)
        if seen.count("fast4") and "slow1" not in seen:
            gate.set()  # every fast item came while the slow source still waited
    assert seen.index("fast4") < seen.index("slow1")
    assert len(seen) == 8


async def test_a_failing_source_ends_the_merge_with_its_error() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "x"
        raise ConnectionError("socket gone")

    async def endless() -> AsyncIterator[str]:
        while True:
            await asyncio.sleep(3600)
            yield "never"

    with pytest.raises(ConnectionError, match="socket gone"):
        async for _ in merge_streams(failing(), endless()):
            pass


async def test_closing_the_merge_closes_its_sources() -> None:
    closed: list[str] = []

    async def source(name: str) -> AsyncIterator[str]:
        try:
            while True:
                yield name
                await asyncio.sleep(0)
        finally:
            closed.append(name)

    merged = merge_streams(source("a"), source("b"))
    assert await anext(merged) in ("a", "b")
    await merged.aclose()  # type: ignore[attr-defined]
    assert sorted(closed) == ["a", "b"]
