"""State store map growth: a small map grows on demand; a batch that overflows it is retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.domain.messages import PutRecord
from actors.store.lmdb_store import StateStore, StoreFullError


def test_small_map_grows_on_demand(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state", map_size=1 << 16) as store:
        blob = "y" * 20_000
        for i in range(30):
            store.put("feed", f"f{i}", {"blob": blob})
        assert store.count("feed") == 30
        assert store.inspect()["env"]["map_size"] >= 30 * 20_000


def test_batch_overflowing_map_raises_store_full_then_retry_succeeds(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state", map_size=1 << 16) as store:
        blob = "z" * 20_000

        def write_all() -> None:
            with store.batch() as tx:
                for i in range(20):
                    tx.put("feed", f"f{i}", {"blob": blob})

        with pytest.raises(StoreFullError):
            write_all()
        assert store.count("feed") == 0
        for _ in range(4):
            try:
                write_all()
                break
            except StoreFullError:
                continue
        assert store.count("feed") == 20


def test_filled_map_makes_the_next_write_grow_it_and_run_again(tmp_path: Path) -> None:
    """Chaos's ``store_full``: the map shrunk to what is in use, and the next write finds it full
    (a small write too, which LMDB could have fitted in free pages); that write grows the map and
    runs again, once, and nothing is lost."""
    with StateStore(tmp_path / "state") as store:
        for i in range(10):
            store.put("feed", f"f{i}", {"blob": "x" * 5_000})
        size = store.fill_map()
        assert store.map_held_full
        assert store.inspect()["env"]["map_size"] == size < 1 << 20
        store.apply([PutRecord("venue", "paper", {"engine": "small"})])
        assert store.map_full_events == 1
        assert not store.map_held_full
        assert store.inspect()["env"]["map_size"] > size
        assert store.get("venue", "paper") == {"engine": "small"}
        store.put("venue", "big", {"engine": "e" * (size // 2)})  # grown ahead of writes again
        assert store.map_full_events == 1
        assert store.count("feed") == 10
