"""The sandbox CLOB venue: every part composed into one object.

``SandboxClob`` is the markets, clock and books (``exchange``), their wire shapes and the
ground truth (``views``), the market channel (``websocket``), signed orders (``orders``),
settlement (``settlement``) and authentication (``auth``); ``rest.clob_app`` serves it.
"""

from __future__ import annotations

from ops.sandbox.clob.auth import ApiKeys
from ops.sandbox.clob.orders import Orders
from ops.sandbox.clob.settlement import Settlement


class SandboxClob(Settlement, Orders, ApiKeys):
    """The sandbox venue's state: markets, clock, credentials, orders, trades, subscribers."""
