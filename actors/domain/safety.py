"""Process-wide guards that third-party imports can undo."""

from __future__ import annotations

import sys

RECURSION_LIMIT = 10_000
"""py_ecc (pulled in by eth_account and py-clob-client) raises the recursion limit to 100,000 at
import; with it, ``json.loads`` of a ~100 KB frame of nested brackets overflows the C stack and
kills the process (SIGSEGV) instead of raising RecursionError. 10,000 keeps py_ecc's needs met
and turns such input into an exception the parsers reject."""


def bound_recursion() -> None:
    """Put the recursion limit back under the C stack's reach; call after importing eth libraries."""
    if sys.getrecursionlimit() > RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
