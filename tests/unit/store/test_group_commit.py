"""Group commit on a real LMDB store: writes that pile up share one durable transaction, each caller
gets its own result, and a bad write fails only its own caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from actors.store.batch import Batch
from actors.store.group_commit import GroupCommitter
from actors.store.lmdb_store import SecretLeakError, StateStore


def _committer(store: StateStore, log: list[int]) -> GroupCommitter[Batch]:
    return GroupCommitter(store.run_writes, lambda writes, _s: log.append(writes))


def test_writes_arriving_together_share_one_transaction_and_each_is_durable(store: StateStore) -> None:
    commits: list[int] = []
    group = _committer(store, commits)

    async def ten_positions_checkpoint() -> list[Any]:
        return await asyncio.gather(
            *(group.write(lambda tx, i=i: tx.put("position", f"p{i}", {"n": i})) for i in range(10))
        )

    results = asyncio.run(ten_positions_checkpoint())
    assert results == [None] * 10
    assert commits == [10]
    assert group.commits == 1
    assert {k: v["n"] for k, v in store.items("position")} == {f"p{i}": i for i in range(10)}


def test_writes_arriving_apart_commit_alone_with_no_wait(store: StateStore) -> None:
    commits: list[int] = []
    group = _committer(store, commits)

    async def one_after_another() -> list[bool]:
        await group.write(lambda tx: tx.put("feed", "a", {"v": 1}))
        await group.write(lambda tx: tx.put("feed", "b", {"v": 2}))
        return [await group.write(lambda tx: tx.delete("feed", "a"))]

    assert asyncio.run(one_after_another()) == [True]
    assert commits == [1, 1, 1]
    assert store.get("feed", "a") is None
    assert store.get("feed", "b") == {"v": 2}


@pytest.mark.usefixtures("no_secrets")
def test_bad_write_in_a_group_fails_its_caller_only_and_the_others_commit(store: StateStore) -> None:
    secret = "sk-live-0123456789abcdef"
    StateStore.register_secret_values([SecretStr(secret)])
    group = _committer(store, [])

    async def one_leaks() -> list[Any]:
        return await asyncio.gather(
            group.write(lambda tx: tx.put("feed", "before", {"v": 1})),
            group.write(lambda tx: tx.put("feed", "leaky", {"k": secret})),
            group.write(lambda tx: tx.put("feed", "after", {"v": 3})),
            return_exceptions=True,
        )

    before, leaky, after = asyncio.run(one_leaks())
    assert before is None
    assert after is None
    assert isinstance(leaky, SecretLeakError)
    assert store.get("feed", "before") == {"v": 1}
    assert store.get("feed", "after") == {"v": 3}
    assert store.get("feed", "leaky") is None


def test_writes_of_one_group_apply_in_arrival_order(store: StateStore) -> None:
    group = _committer(store, [])

    async def same_key_twice() -> None:
        await asyncio.gather(
            group.write(lambda tx: tx.put("portfolio", "main", {"v": "first"})),
            group.write(lambda tx: tx.put("portfolio", "main", {"v": "second"})),
        )

    asyncio.run(same_key_twice())
    assert store.get("portfolio", "main") == {"v": "second"}
