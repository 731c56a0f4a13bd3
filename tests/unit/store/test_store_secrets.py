"""State store secrets: a registered secret value is refused in every write path."""

from __future__ import annotations

import io
import json

import pytest
from pydantic import SecretStr

from actors.store.lmdb_store import SecretLeakError, StateStore
from tests.unit.store.store_helpers import make_order


@pytest.mark.usefixtures("no_secrets")
def test_registered_secret_refused_everywhere(store: StateStore) -> None:
    secret = "sk-live-0123456789abcdef"
    quoted = 'pa"ss\\word-xyz'
    StateStore.register_secret_values([SecretStr(secret), quoted, None, "abc"])

    with pytest.raises(SecretLeakError) as err:
        store.put("venue", "binance", {"note": f"key={secret}"})
    assert secret not in str(err.value)
    with pytest.raises(SecretLeakError):
        store.put("venue", "polymarket", {"nested": [{"p": quoted}]})  # stored JSON-escaped
    with pytest.raises(SecretLeakError):
        store.put("feed", f"x{secret}", {})
    with pytest.raises(SecretLeakError):
        store.record_intent(make_order(strategy=secret))

    def leaky_batch() -> None:
        with store.batch() as tx:
            tx.put("feed", "innocent", {})
            tx.put("feed", "leaky", {"k": secret})

    with pytest.raises(SecretLeakError):
        leaky_batch()
    assert store.get("feed", "innocent") is None

    store.put("feed", "short", {"v": "abc"})  # too short to be checked: ordinary data
    leaky = json.dumps({"kind": "meta", "key": "schema", "v": 1, "data": {"version": 1}}) + "\n"
    leaky += json.dumps({"kind": "feed", "key": "f", "v": 1, "data": {"s": secret}}) + "\n"
    with StateStore(store.path.parent / "other") as other, pytest.raises(SecretLeakError):
        other.import_json(io.StringIO(leaky))
