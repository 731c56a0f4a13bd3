"""The state store fixture: a real LMDB environment in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.store.lmdb_store import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state") as s:
        yield s


@pytest.fixture
def no_secrets() -> Iterator[None]:
    """No registered secret values before or after the test (the registry is process-wide)."""
    StateStore.clear_secret_values()
    yield
    StateStore.clear_secret_values()
