"""The sandbox CLOB venue: every part composed into one object.

``SandboxClob`` is the markets, clock and books (``exchange``), their wire shapes and the
ground truth (``views``), the market channel (``websocket``), signed orders (``orders``),
settlement (``settlement``), authentication (``auth``) and the RTDS Chainlink prices
(``rtds``); ``rest.clob_app`` serves it.
"""

from __future__ import annotations

from ops.sandbox.clob.auth import ApiKeys
from ops.sandbox.clob.orders import Orders
from ops.sandbox.clob.rtds import PriceChannel
from ops.sandbox.clob.settlement import Settlement


class SandboxClob(Settlement, Orders, ApiKeys, PriceChannel):
    """The sandbox venue's state: markets, clock, credentials, orders, trades, subscribers (of the
    market and user channels and of the RTDS Chainlink prices)."""
