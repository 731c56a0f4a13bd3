"""What a new position actor's worker imports (issue 13: every start pays for it again).

Ray imports the position actor's class module, and the class module of every actor it calls (it
loads an actor's class to make a handle to it): none of that may bring in a venue client, the
research stack, the CLI or the tools. Checked in a fresh interpreter, as a worker starts.
"""

from __future__ import annotations

from ops.bench.worker_start import POSITION_WORKER_MODULES, loaded_modules
from tests.paths import REPO_ROOT


def test_position_worker_modules_bring_no_venue_client_research_or_cli() -> None:
    loaded = loaded_modules(REPO_ROOT, POSITION_WORKER_MODULES)
    assert loaded["heavy"] == []


def test_module_with_venue_client_is_reported_heavy() -> None:
    """The check itself sees a heavy import: the Binance client module brings ccxt and itself."""
    loaded = loaded_modules(REPO_ROOT, ("actors.venues.binance.client",))
    assert {"ccxt", "actors.venues.binance"} <= set(loaded["heavy"])
