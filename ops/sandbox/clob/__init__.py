"""A local Polymarket CLOB on loopback: the real py-clob-client talks to it as to clob.polymarket.com.

What is REAL here and what is MODELLED (say so wherever its numbers are shown):

* **Real** (from the bundled day, ``ops/data/polymarket``): the market list (292 "Bitcoin Up or
  Down" 5-minute windows of 2026-07-24: condition ids, Up/Down token ids, questions, minimum
  order size, fee flags), their start/end times, their *real* resolutions (which token won),
  and the Chainlink BTC/USD path that drives everything below.
* **Modelled**: every other participant. There is no order-book history, so the liquidity our
  orders meet is ``actors.data.polymarket_books.BookModel`` (a lagged fair value of the
  Chainlink path, a spread and seeded depth), recomputed at every clock step. Our orders never
  trade with each other; they fill against that modelled book in the one matching engine
  (``actors.core.matching.MatchingEngine``, book mode, balances on), so the fills, fees and balances
  here are the same arithmetic as the paper venue and the backtester. The tick size follows a
  rule, not a record: 0.01, or the market's recorded 0.001 while the Up book trades beyond
  0.96/0.04 (Polymarket narrows the tick there; the recorded tick is a post-close snapshot), or
  what ``set_tick_size`` (``POST /_sandbox/tick-size``) sets; subscribers get ``tick_size_change``
  either way, and an order off the tick is refused. Every refused order post is kept in
  ``order_rejections`` (``GET /_sandbox/rejections``).

Run it: ``python -m ops.sandbox.clob --port 8802 --speed 1`` (loopback; ``--fault-plan``
loads a ``FaultPlan``), or in-process ``clob_app(SandboxClob(...))`` / ``serve_clob``.

The modules, one concern each:

* ``protocol``: constants, error texts and the small wire helpers (cursors, ISO times, amounts).
* ``signing``: the EIP-712 messages the venue verifies (L1 ``ClobAuth``, CTF exchange orders).
* ``records``: the state records the venue holds (markets, creds, orders, trades, payouts).
* ``exchange``: markets, the sandbox clock and the modelled books (``ClobExchange``).
* ``views``: the wire shapes of orders, trades, markets and books; paging; ground truth.
* ``websocket``: the market channel (subscribers, snapshots, diffs, the websocket itself).
* ``orders``: signed orders: validation, placement, cancels, fills recorded as trades.
* ``settlement``: resolution of markets whose window ended, payouts in USDC.
* ``auth``: L1 (create/derive API keys) and L2 (HMAC) authentication, the faucet.
* ``venue``: ``SandboxClob``, all of the above in one object.
* ``rest``: the aiohttp app (``clob_app``, ``serve_clob``) and its route handlers.
* ``__main__``: ``python -m ops.sandbox.clob``.
"""

from ops.sandbox.clob.auth import hmac_signature
from ops.sandbox.clob.protocol import (
    END_CURSOR,
    EXCHANGES,
    START_CURSOR,
    USDC,
    ZERO_ADDRESS,
    RequestError,
    decode_cursor,
    encode_cursor,
    iso_ms,
)
from ops.sandbox.clob.records import Payout, SandboxCreds
from ops.sandbox.clob.rest import clob_app, serve_clob
from ops.sandbox.clob.signing import clob_auth_message, eip712_digest, order_message, recover_signer
from ops.sandbox.clob.venue import SandboxClob

__all__ = [
    "END_CURSOR",
    "EXCHANGES",
    "START_CURSOR",
    "USDC",
    "ZERO_ADDRESS",
    "Payout",
    "RequestError",
    "SandboxClob",
    "SandboxCreds",
    "clob_app",
    "clob_auth_message",
    "decode_cursor",
    "eip712_digest",
    "encode_cursor",
    "hmac_signature",
    "iso_ms",
    "order_message",
    "recover_signer",
    "serve_clob",
]
