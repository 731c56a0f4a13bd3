"""The aiohttp app of the CLOB sandbox: every route of the wire protocol, and its error handling.

Wire protocol (shapes of ``tests/fixtures/polymarket`` and what py-clob-client 0.34.6 sends):

* Public: ``GET /``, ``/time``, ``/markets`` (``next_cursor`` paging: base64 offsets, ``MA==``
  first, ``LTE=`` end), ``/markets/{condition_id}``, ``/book``, ``POST /books``, ``/midpoint``,
  ``/price`` (``side=BUY`` answers the best bid, ``SELL`` the best ask, as the real CLOB does),
  ``/spread``, ``/last-trade-price``, ``/tick-size``, ``/neg-risk``, ``/fee-rate`` (``base_fee``
  as a number: the client compares it with ``> 0``, a string would crash it).
* Ground truth: ``GET /_sandbox/orders``, ``/_sandbox/fills``, ``/_sandbox/trades``,
  ``/_sandbox/payouts``, ``/_sandbox/balances?address=``, ``GET|POST /_sandbox/clock``
  (``{"advance_s": s}`` or ``{"to_ms": ms}``), ``/_sandbox/rejections`` (every refused order post),
  ``POST /_sandbox/tick-size`` (``{"token_id": id, "tick_size": "0.1"}``: change a market's tick
  now, pushing ``tick_size_change``; ``null`` restores the modelled rule), and the same as Python
  methods. Fault injection
  (``ops.sandbox.faults``) is installed on every app: ``/_sandbox/faults``.

Websockets: ``/ws/market`` (``websocket``), ``/ws/user`` (``user_channel``) and ``/rtds``, the RTDS
Chainlink prices (``rtds``).

Signed trading routes authenticate with L2 (``auth``); their bodies are handled by ``orders``.
Refusals answer the venue's JSON errors; an unexpected failure answers 500 ``{"error":
"Internal server error"}``; bad input never takes the server down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ops.sandbox.clob.protocol import (
    ERR_INTERNAL,
    ERR_NO_BOOK,
    ERR_PAYLOAD,
    ERR_TOKEN,
    MAX_BATCH,
    UNLIMITED_ALLOWANCE,
    USDC,
    RequestError,
    _num,
    _order_error,
    _units,
    iso_ms,
)
from ops.sandbox.clob.records import SandboxCreds
from ops.sandbox.clob.rtds import serve_rtds_ws
from ops.sandbox.clob.user_channel import serve_user_ws
from ops.sandbox.clob.venue import SandboxClob
from ops.sandbox.clob.websocket import serve_market_ws
from ops.sandbox.faults import FaultInjector

log = logging.getLogger(__name__)

VENUE_KEY = web.AppKey("sandbox_clob", SandboxClob)
FAULTS_KEY = web.AppKey("sandbox_clob_faults", FaultInjector)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals become the venue's JSON errors; anything unexpected a 500, never a dead server."""
    try:
        return await handler(request)
    except RequestError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status >= 400:
            return web.json_response({"error": exc.reason}, status=exc.status)
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("sandbox clob: %s %s failed", request.method, request.path)
        return web.json_response({"error": ERR_INTERNAL}, status=500)


def _venue(request: web.Request) -> SandboxClob:
    return request.app[VENUE_KEY]


def _token(request: web.Request, venue: SandboxClob) -> str:
    token = request.query.get("token_id", "")
    if not token or token not in venue._by_token:
        raise RequestError(ERR_TOKEN, 400)
    return token


def _open_token(request: web.Request, venue: SandboxClob) -> str:
    token = _token(request, venue)
    if venue._by_token[token].closed:
        raise RequestError(ERR_NO_BOOK, 404)
    return token


async def _json_body(request: web.Request) -> Any:
    text = (await request.read()).decode("utf-8", errors="replace")
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise RequestError("Invalid payload", 400) from None


async def _l2(request: web.Request) -> tuple[SandboxCreds, str]:
    """Authenticate an L2 request; returns its creds and raw body text."""
    body = (await request.read()).decode("utf-8", errors="replace")
    creds = _venue(request).check_l2(dict(request.headers), request.method, request.path, body or None)
    return creds, body


def _parse_body(body: str) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError("Invalid payload", 400) from None


async def h_ok(_request: web.Request) -> web.Response:
    return web.Response(text='"OK"', content_type="application/json")


async def h_time(request: web.Request) -> web.Response:
    return web.json_response(_venue(request).now_ms // 1000)


async def h_markets(request: web.Request) -> web.Response:
    venue = _venue(request)
    page = venue.page(venue._order_markets, request.query.get("next_cursor"), venue.market_json)
    return web.json_response(page)


async def h_market(request: web.Request) -> web.Response:
    venue = _venue(request)
    market = venue._markets.get(request.match_info["condition_id"])
    if market is None:
        raise RequestError("market not found", 404)
    return web.json_response(venue.market_json(market))


async def h_book(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response(venue.book_json(_open_token(request, venue)))


async def h_books(request: web.Request) -> web.Response:
    venue = _venue(request)
    body = await _json_body(request)
    if not isinstance(body, list) or not all(isinstance(b, dict) for b in body):
        raise RequestError("Invalid payload", 400)
    if len(body) > 500:
        raise RequestError("Payload exceeds the limit", 400)
    books = []
    for item in body:
        token = item.get("token_id")
        if isinstance(token, str) and token in venue._by_token and not venue._by_token[token].closed:
            books.append(venue.book_json(token))
    return web.json_response(books)


async def h_midpoint(request: web.Request) -> web.Response:
    venue = _venue(request)
    book = venue.current_book(_open_token(request, venue))
    mid = book.mid
    if mid is None:
        raise RequestError(ERR_NO_BOOK, 404)
    return web.json_response({"mid": _num(mid)})


async def h_price(request: web.Request) -> web.Response:
    venue = _venue(request)
    token = _open_token(request, venue)
    side = request.query.get("side", "").upper()
    if side not in ("BUY", "SELL"):
        raise RequestError("Invalid side", 400)
    book = venue.current_book(token)
    price = book.best_bid if side == "BUY" else book.best_ask
    if price is None:
        raise RequestError(ERR_NO_BOOK, 404)
    return web.json_response({"price": _num(price)})


async def h_spread(request: web.Request) -> web.Response:
    venue = _venue(request)
    spread = venue.current_book(_open_token(request, venue)).spread
    if spread is None:
        raise RequestError(ERR_NO_BOOK, 404)
    return web.json_response({"spread": _num(spread)})


async def h_last_trade(request: web.Request) -> web.Response:
    venue = _venue(request)
    token = _token(request, venue)
    last = venue._last_trade.get(token)
    if last is None:
        return web.json_response({"price": "0.5", "side": ""})
    return web.json_response({"price": _num(last[0]), "side": last[1].value.upper()})


async def h_tick_size(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response({"minimum_tick_size": float(venue.tick_size(_token(request, venue)))})


async def h_neg_risk(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response({"neg_risk": venue._by_token[_token(request, venue)].neg_risk})


async def h_fee_rate(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response({"base_fee": venue._by_token[_token(request, venue)].fee_bps})


def _creds_json(creds: SandboxCreds) -> dict[str, str]:
    return {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}


async def h_create_key(request: web.Request) -> web.Response:
    venue = _venue(request)
    address, nonce = venue.check_l1(dict(request.headers))
    return web.json_response(_creds_json(venue.create_api_key(address, nonce)))


async def h_derive_key(request: web.Request) -> web.Response:
    venue = _venue(request)
    address, nonce = venue.check_l1(dict(request.headers))
    return web.json_response(_creds_json(venue.derive_api_key(address, nonce)))


async def h_api_keys(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    return web.json_response({"apiKeys": _venue(request).api_keys(creds.address)})


async def h_post_order(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    return web.json_response(_venue(request).post_order(creds, payload))


async def h_post_orders(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    if not isinstance(payload, list) or not payload:
        raise _order_error(ERR_PAYLOAD)
    if len(payload) > MAX_BATCH:
        raise _order_error(f"{ERR_PAYLOAD}: at most {MAX_BATCH} orders a batch")
    venue = _venue(request)
    results: list[dict[str, Any]] = []
    for item in payload:
        try:
            results.append(venue.post_order(creds, item))
        except RequestError as exc:
            results.append({"success": False, "orderID": None, "errorMsg": exc.message, "error": exc.message})
    return web.json_response(results)


async def h_cancel(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("orderID"), str):
        raise RequestError("Invalid order payload", 400)
    return web.json_response(_venue(request).cancel_orders(creds, [payload["orderID"]]))


async def h_cancel_orders(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    if not isinstance(payload, list) or not all(isinstance(i, str) for i in payload):
        raise RequestError("Invalid order payload", 400)
    return web.json_response(_venue(request).cancel_orders(creds, payload))


async def h_cancel_all(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    return web.json_response(_venue(request).cancel_where(creds))


async def h_cancel_market(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body) or {}
    if not isinstance(payload, dict):
        raise RequestError("Invalid payload", 400)
    market, asset = payload.get("market") or "", payload.get("asset_id") or ""
    if not isinstance(market, str) or not isinstance(asset, str):
        raise RequestError("Invalid payload", 400)
    return web.json_response(_venue(request).cancel_where(creds, market, asset))


async def h_orders(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    q = request.query
    items = [
        o
        for o in venue.open_orders(creds.address)
        if (not q.get("market") or o["market"] == q["market"])
        and (not q.get("asset_id") or o["asset_id"] == q["asset_id"])
        and (not q.get("id") or o["id"] == q["id"])
    ]
    return web.json_response(venue.page(items, q.get("next_cursor"), _same))


async def h_order(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    rec = venue._orders.get(request.match_info["order_id"])
    if rec is None or rec.address != creds.address:
        raise RequestError("order not found", 404)
    return web.json_response(venue.order_json(rec))


def _same(row: dict[str, Any]) -> dict[str, Any]:
    return row


def _int_query(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise RequestError(f"invalid {name}", 400) from None


async def h_trades(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    q = request.query
    after, before = _int_query(q.get("after"), "after"), _int_query(q.get("before"), "before")
    maker = (q.get("maker_address") or "").lower()
    items = []
    for trade in venue._trades:
        if venue._orders[trade.order_id].address != creds.address:
            continue
        seconds = trade.fill.ts_ms // 1000
        if after is not None and seconds < after:
            continue
        if before is not None and seconds > before:
            continue
        row = venue.trade_json(trade)
        if q.get("id") and row["id"] != q["id"]:
            continue
        if q.get("market") and row["market"] != q["market"]:
            continue
        if q.get("asset_id") and row["asset_id"] != q["asset_id"]:
            continue
        if maker and row["maker_address"].lower() != maker:
            continue
        items.append(row)
    return web.json_response(venue.page(items, q.get("next_cursor"), _same))


async def h_balance(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    asset_type = request.query.get("asset_type", "COLLATERAL").upper()
    if asset_type == "COLLATERAL":
        asset = USDC
    elif asset_type == "CONDITIONAL":
        asset = request.query.get("token_id", "")
        if asset not in venue._by_token:
            raise RequestError(ERR_TOKEN, 400)
    else:
        raise RequestError("invalid asset_type", 400)
    return web.json_response(
        {"balance": _units(venue.balance(creds.address, asset)), "allowance": UNLIMITED_ALLOWANCE}
    )


async def h_notifications(request: web.Request) -> web.Response:
    await _l2(request)
    return web.json_response([])


async def h_ws_market(request: web.Request) -> web.WebSocketResponse:
    return await serve_market_ws(request, _venue(request), request.app[FAULTS_KEY])


async def h_ws_user(request: web.Request) -> web.WebSocketResponse:
    return await serve_user_ws(request, _venue(request), request.app[FAULTS_KEY])


async def h_ws_rtds(request: web.Request) -> web.WebSocketResponse:
    return await serve_rtds_ws(request, _venue(request), request.app[FAULTS_KEY])


async def h_truth_orders(request: web.Request) -> web.Response:
    return web.json_response({"orders": _venue(request).orders(request.query.get("address"))})


async def h_truth_fills(request: web.Request) -> web.Response:
    return web.json_response({"fills": _venue(request).fills()})


async def h_truth_trades(request: web.Request) -> web.Response:
    return web.json_response({"trades": _venue(request).trades(request.query.get("address"))})


async def h_truth_payouts(request: web.Request) -> web.Response:
    rows = [
        {
            "condition_id": p.condition_id,
            "token": p.token,
            "account": p.account,
            "shares": _num(p.shares),
            "usdc": _num(p.usdc),
            "ts_ms": p.ts_ms,
        }
        for p in _venue(request).payouts()
    ]
    return web.json_response({"payouts": rows})


async def h_truth_balances(request: web.Request) -> web.Response:
    address = request.query.get("address", "")
    try:
        return web.json_response({"balances": _venue(request).balances(address)})
    except (ValueError, TypeError):
        raise RequestError("invalid address", 400) from None


async def h_set_tick(request: web.Request) -> web.Response:
    """``POST /_sandbox/tick-size`` ``{"token_id" | "market": id, "tick_size": "0.1" | null}``."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise RequestError("body must be {'token_id': id, 'tick_size': tick}", 400)
    venue = _venue(request)
    key = str(body.get("token_id") or body.get("market") or "")
    try:
        venue.set_tick_size(key, body.get("tick_size"))
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise RequestError(str(exc), 400) from None
    token = key if key in venue._by_token else venue._markets[key].info.token_ids[0]
    return web.json_response({"minimum_tick_size": float(venue.tick_size(token))})


async def h_rejections(request: web.Request) -> web.Response:
    return web.json_response(_venue(request).order_rejections)


async def h_clock(request: web.Request) -> web.Response:
    venue = _venue(request)
    if request.method == "POST":
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise RequestError("body must be {'advance_s': s} or {'to_ms': ms}", 400)
        try:
            if "to_ms" in body:
                venue.advance_to(int(body["to_ms"]))
            else:
                venue.advance(float(body.get("advance_s", 0)))
        except (TypeError, ValueError, OverflowError) as exc:
            raise RequestError(str(exc), 400) from None
    return web.json_response({"now_ms": venue.now_ms, "book_ms": venue.book_ms, "now": iso_ms(venue.now_ms)})


def clob_app(venue: SandboxClob, faults: FaultInjector | None = None) -> web.Application:
    """The aiohttp app serving ``venue`` (with fault injection installed, rules empty by default)."""
    app = web.Application(middlewares=[_errors])
    injector = faults if faults is not None else FaultInjector()
    app[VENUE_KEY] = venue
    app[FAULTS_KEY] = injector
    r = app.router
    r.add_get("/", h_ok)
    r.add_get("/time", h_time)
    r.add_get("/markets", h_markets)
    r.add_get("/markets/{condition_id}", h_market)
    r.add_get("/book", h_book)
    r.add_post("/books", h_books)
    r.add_get("/midpoint", h_midpoint)
    r.add_get("/price", h_price)
    r.add_get("/spread", h_spread)
    r.add_get("/last-trade-price", h_last_trade)
    r.add_get("/tick-size", h_tick_size)
    r.add_get("/neg-risk", h_neg_risk)
    r.add_get("/fee-rate", h_fee_rate)
    r.add_post("/auth/api-key", h_create_key)
    r.add_get("/auth/derive-api-key", h_derive_key)
    r.add_get("/auth/api-keys", h_api_keys)
    r.add_post("/order", h_post_order)
    r.add_post("/orders", h_post_orders)
    r.add_delete("/order", h_cancel)
    r.add_delete("/orders", h_cancel_orders)
    r.add_delete("/cancel-all", h_cancel_all)
    r.add_delete("/cancel-market-orders", h_cancel_market)
    r.add_get("/data/orders", h_orders)
    r.add_get("/data/order/{order_id}", h_order)
    r.add_get("/data/trades", h_trades)
    r.add_get("/balance-allowance", h_balance)
    r.add_get("/balance-allowance/update", h_balance)
    r.add_get("/notifications", h_notifications)
    r.add_get("/ws/market", h_ws_market)
    r.add_get("/ws/user", h_ws_user)
    r.add_get("/rtds", h_ws_rtds)
    r.add_get("/_sandbox/orders", h_truth_orders)
    r.add_get("/_sandbox/fills", h_truth_fills)
    r.add_get("/_sandbox/trades", h_truth_trades)
    r.add_get("/_sandbox/payouts", h_truth_payouts)
    r.add_get("/_sandbox/balances", h_truth_balances)
    r.add_get("/_sandbox/clock", h_clock)
    r.add_post("/_sandbox/clock", h_clock)
    r.add_post("/_sandbox/tick-size", h_set_tick)
    r.add_get("/_sandbox/rejections", h_rejections)
    injector.install(app)

    async def on_startup(_app: web.Application) -> None:
        venue.start_clock()

    async def on_cleanup(_app: web.Application) -> None:
        await venue.stop_clock()
        venue.close_subscribers()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def serve_clob(
    venue: SandboxClob, host: str = "127.0.0.1", port: int = 8802, faults: FaultInjector | None = None
) -> web.AppRunner:
    """Start serving ``venue``; the caller owns the runner (``await runner.cleanup()`` to stop)."""
    runner = web.AppRunner(clob_app(venue, faults))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
