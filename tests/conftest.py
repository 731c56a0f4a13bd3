"""Fixtures every test folder shares: one local Ray instance per module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A local Ray instance sized for the 2-core CI machine, shut down after the module.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("ray_local")``.
    """
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        log_to_driver=False,
    )
    yield
    ray.shutdown()
