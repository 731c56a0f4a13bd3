"""A local Binance spot venue on loopback: real ccxt talks to it as it would to api.binance.com.

Why: the Binance gateway, retries and reconciliation must be exercised against the real wire
protocol (signatures, error codes, rate limits, lost answers) without the internet.

Deviations from Binance, on purpose: a client order id is unique forever (Binance only
refuses one that is *open*), so a re-sent order never becomes a second order; a re-sent
client id of a rejected order gets the original rejection again. Rejected orders are not
visible (-2013), as on Binance. Commissions are charged as on Binance (``actors.core.fees``,
``FeeAsset.RECEIVED``): a buy's in the base asset out of the base received, a sell's in USDT, or
all in BNB when a ``FeeToken`` is configured and the account holds BNB (its price is fixed, and
``/api/v3/ticker/price`` quotes it). Markets: BTC, ETH, SOL and XRP against USDT on one replay
clock, with every bar before the replay's start served as history (``exchange``). The user data
stream (listen keys, ``executionReport``, ``outboundAccountPosition``) is served (``user_data``). No
order-count limits, no IP bans. Orders meet Binance's symbol filters, listed in
``exchangeInfo`` and refused as -1013 "Filter failure: <FILTER>": PRICE_FILTER, LOT_SIZE,
MARKET_LOT_SIZE (a market order's maxQty, on top of LOT_SIZE), NOTIONAL and PERCENT_PRICE_BY_SIDE
(0.2x..5x ``/api/v3/avgPrice``, BTCUSDT's multipliers); every refused
new order is kept in ``order_rejections`` (what a client sent only to be rejected).

The modules, one concern each (every one says what it models and why):

* ``protocol``: symbols, filter limits, Binance's error shape, parameter parsing.
* ``auth``: API keys and the HMAC signature, timestamp and ``recvWindow`` checks.
* ``streams``: websocket streams (raw, combined, ``SUBSCRIBE``), the lowest layer.
* ``exchange``: the replayed markets and their history, the modelled books, engine, accounts, order views.
* ``rest``: request plumbing: weights and 429s, error JSON, parameters, signed requests.
* ``market_data`` / ``trading``: the public and the signed endpoints.
* ``user_data``: listen keys and the account's pushed events (the user data stream).
* ``ground_truth``: what the engine really holds, and the ``/_sandbox`` admin endpoints.
* ``venue``: ``SandboxBinance``, all of the above in one object, and ``binance_app``.
* ``__main__``: ``python -m ops.sandbox.binance``.
"""

from ops.sandbox.binance.auth import Credentials
from ops.sandbox.binance.exchange import HISTORY_BARS, SANDBOX_MARKETS, BookModel, SandboxMarket
from ops.sandbox.binance.protocol import BASE, QUOTE, SYMBOL, BinanceError, fmt
from ops.sandbox.binance.venue import SandboxBinance, binance_app

__all__ = [
    "BASE",
    "HISTORY_BARS",
    "QUOTE",
    "SANDBOX_MARKETS",
    "SYMBOL",
    "BinanceError",
    "BookModel",
    "Credentials",
    "SandboxBinance",
    "SandboxMarket",
    "binance_app",
    "fmt",
]
