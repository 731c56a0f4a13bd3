"""Ground truth of the sandbox: what the engine really holds, for tests and the chaos harness.

``GET /_sandbox/orders`` and ``/_sandbox/fills`` list every order and fill the engine holds
(``venue.orders()``/``venue.fills()`` in Python), ``/_sandbox/rejections`` every new order refused
(``venue.order_rejections``: client id, code, message); ``POST /_sandbox/advance`` ``{"bars": n}``,
``POST /_sandbox/accounts`` ``{"balances": {"USDT": "1000"}}`` and ``GET /_sandbox/state`` (the
clock, every market's close and book, the websocket subscriptions, the live listen keys) drive a
sandbox running in another process (``python -m ops.sandbox.binance``). Fault injection
(``ops.sandbox.faults.FaultInjector``, ``venue.faults``) is installed on the app under the same
prefix (``/_sandbox/faults``).
"""

from __future__ import annotations

from decimal import InvalidOperation
from typing import Any

from aiohttp import web

from actors.domain.model import Fill, Order
from ops.sandbox.binance.exchange import BinanceExchange


class GroundTruth(BinanceExchange):
    """Every order and fill as the engine holds them, the venue's state, and the admin endpoints."""

    def orders(self, account: str | None = None) -> list[Order]:
        """Every order the engine holds (rejected ones included), in arrival order."""
        return self.engine.orders(account=account)

    def order(self, client_id: str) -> Order | None:
        return self.engine.order(client_id)

    def fills(self, account: str | None = None) -> list[Fill]:
        return self.engine.fills(account=account)

    def ground_truth_orders(self) -> list[dict[str, Any]]:
        return [
            {
                **o.model_dump(mode="json"),
                "account": self.engine.account_of(o.client_id),
                "binance_status": self._status(o),
            }
            for o in self.engine.orders()
        ]

    def ground_truth_fills(self) -> list[dict[str, Any]]:
        return [
            {
                **f.model_dump(mode="json"),
                "account": self.engine.account_of(f.client_id),
                "symbol": self._by_market[f.market].symbol,
                "trade_id": self._fill_trade.get(f.fill_id),
            }
            for f in self.engine.fills()
        ]

    async def admin_orders(self, _request: web.Request) -> web.Response:
        return web.json_response({"orders": self.ground_truth_orders()})

    async def admin_fills(self, _request: web.Request) -> web.Response:
        return web.json_response({"fills": self.ground_truth_fills()})

    async def admin_rejections(self, _request: web.Request) -> web.Response:
        rows = [{"client_id": cid, "code": code, "msg": msg} for cid, code, msg in self.order_rejections]
        return web.json_response({"rejections": rows})

    def state_json(self) -> dict[str, Any]:
        ts, o, h, lo, c, v = self.bar()
        return {
            "bar_index": self._bar,
            "bars": len(self._ts),
            "now_ms": self._now_ms,
            "bar": {
                "ts_ms": ts,
                "open": str(o),
                "high": str(h),
                "low": str(lo),
                "close": str(c),
                "volume": str(v),
            },
            "best_bid": str(self.book().best_bid),
            "best_ask": str(self.book().best_ask),
            "last_update_id": self.primary.update_id,
            "history_bars": self._bar,
            "markets": {
                m.symbol: {
                    "close": str(m.bar(self._bar)[4]),
                    "best_bid": str(self.book(m.market).best_bid),
                    "best_ask": str(self.book(m.market).best_ask),
                }
                for m in self.symbols.values()
            },
            "accounts": sorted(self._by_name),
            "websockets": len(self._conns),
            "subscriptions": sorted(set().union(*self.subscriptions())),
            "user_streams": [
                {"listen_key": k, "account": a, "sockets": self.user_sockets(k)}
                for k, a in sorted(self.listen_keys.items())
            ],
            "clock_running": self._clock_task is not None,
        }

    async def admin_state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state_json())

    async def admin_advance(self, request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
            bars = int(body.get("bars", 1)) if isinstance(body, dict) else 1
        except (ValueError, TypeError, OverflowError):
            return web.json_response({"error": 'body must be JSON {"bars": n}'}, status=400)
        if bars < 0:
            return web.json_response({"error": "bars must be >= 0"}, status=400)
        updates = self.advance(bars)
        return web.json_response({**self.state_json(), "updates": len(updates)})

    async def admin_accounts(self, request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
            balances = body.get("balances", {})
            if not isinstance(balances, dict):
                raise ValueError("balances must be an object")
            creds = self.create_account(
                {str(k): str(v) for k, v in balances.items()},
                api_key=body.get("api_key"),
                api_secret=body.get("api_secret"),
                name=body.get("name"),
            )
        except InvalidOperation:
            return web.json_response({"error": "balances must be decimal strings"}, status=400)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(creds.model_dump())
