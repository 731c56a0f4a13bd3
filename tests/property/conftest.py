"""Fixtures of the property tests: the server thread the fuzzed sandboxes run on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.property.sandbox_http import Served


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served()
    yield s
    s.close()
