"""The store's last line of defence against a secret being checkpointed by mistake.

Secret strings (API keys, private keys) registered here, process-wide, make every store write
whose key or JSON contains one (verbatim or JSON-escaped) fail with :class:`SecretLeakError`.
Not a redaction layer: a transformed secret (base64, truncated) is not caught. Register them
in the store's own process (the Store actor), since that is where the check runs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable

from pydantic import SecretStr

from actors.store.records import MIN_SECRET_LEN, SecretLeakError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()


def register(values: Iterable[str | SecretStr | None]) -> None:
    """Refuse from now on any record containing one of these (``SecretStr`` or plain; None skipped).

    Values shorter than ``MIN_SECRET_LEN`` characters are ignored: they would match ordinary data.
    """
    global _secrets  # noqa: PLW0603 - one registry per process, on purpose
    fresh = set()
    for item in values:
        value = item.get_secret_value() if isinstance(item, SecretStr) else item
        if not value:
            continue
        if len(value) < MIN_SECRET_LEN:
            log.warning("store: a secret shorter than %d characters is not checked", MIN_SECRET_LEN)
            continue
        fresh.add(value)
        fresh.add(json.dumps(value, ensure_ascii=False)[1:-1])
    with _lock:
        _secrets = _secrets | frozenset(fresh)


def clear() -> None:
    """Forget every registered secret."""
    global _secrets  # noqa: PLW0603 - one registry per process, on purpose
    with _lock:
        _secrets = frozenset()


def check(what: str, key: str, text: str) -> None:
    """Raise :class:`SecretLeakError` when ``key`` or ``text`` holds a registered secret."""
    for secret in _secrets:
        if secret in text or secret in key:
            raise SecretLeakError(f"{what}: it contains a registered secret value")
