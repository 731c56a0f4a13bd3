"""The sandbox Binance venue: every concern's layer composed into one object, and its app.

``SandboxBinance`` is the market and state (``exchange``, on top of ``streams``), the REST
plumbing (``rest``), the public and signed endpoints (``market_data``, ``trading``), the user
data stream (``user_data``) and the ground truth (``ground_truth``); ``binance_app`` routes
Binance's paths to them.
"""

from __future__ import annotations

from aiohttp import web

from ops.sandbox.binance.ground_truth import GroundTruth
from ops.sandbox.binance.market_data import MarketDataEndpoints
from ops.sandbox.binance.user_data import UserDataEndpoints


class SandboxBinance(GroundTruth, UserDataEndpoints, MarketDataEndpoints):
    """State of the sandbox venue: engine, accounts, replayed market, websocket subscribers."""

    async def start_server(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve ``binance_app(self)``; returns the base URL (``http://host:port``)."""
        if self._runner is not None:
            raise RuntimeError("already serving")
        runner = web.AppRunner(binance_app(self), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self._runner = runner
        self._url = f"http://{host}:{bound}"
        return self._url

    async def stop_server(self) -> None:
        self.stop_clock()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def rest_url(self) -> str:
        if self._url is None:
            raise RuntimeError("not serving: await start_server() first")
        return self._url

    @property
    def ws_url(self) -> str:
        """Base of the raw streams, what ccxt.pro wants in ``urls['api']['ws']['spot']``."""
        return self.rest_url.replace("http://", "ws://", 1) + "/ws"

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.stop_clock()
        await self.close_websockets()


def binance_app(venue: SandboxBinance) -> web.Application:
    """The aiohttp application speaking Binance's spot API for ``venue``."""
    app = web.Application(middlewares=[venue.middleware])
    venue.faults.install(app)
    r = app.router
    r.add_get("/api/v3/ping", venue.ping)
    r.add_get("/api/v3/time", venue.server_time)
    r.add_get("/api/v3/exchangeInfo", venue.exchange_info)
    r.add_get("/api/v3/klines", venue.klines)
    r.add_get("/api/v3/ticker/price", venue.ticker_price)
    r.add_get("/api/v3/avgPrice", venue.avg_price_endpoint)
    r.add_get("/api/v3/depth", venue.depth)
    r.add_get("/api/v3/trades", venue.trades)
    r.add_get("/api/v3/aggTrades", venue.agg_trades)
    r.add_post("/api/v3/order", venue.new_order)
    r.add_get("/api/v3/order", venue.query_order)
    r.add_delete("/api/v3/order", venue.cancel_order)
    r.add_get("/api/v3/openOrders", venue.open_orders)
    r.add_delete("/api/v3/openOrders", venue.cancel_open_orders)
    r.add_get("/api/v3/account", venue.account_info)
    r.add_get("/api/v3/myTrades", venue.my_trades)
    r.add_post("/api/v3/userDataStream", venue.create_listen_key)
    r.add_put("/api/v3/userDataStream", venue.keepalive_listen_key)
    r.add_delete("/api/v3/userDataStream", venue.close_listen_key)
    r.add_get("/ws", venue._ws_handler)
    r.add_get("/ws/{streams:.*}", venue._ws_handler)
    r.add_get("/stream", venue._ws_handler)
    r.add_get("/_sandbox/orders", venue.admin_orders)
    r.add_get("/_sandbox/fills", venue.admin_fills)
    r.add_get("/_sandbox/rejections", venue.admin_rejections)
    r.add_get("/_sandbox/state", venue.admin_state)
    r.add_post("/_sandbox/advance", venue.admin_advance)
    r.add_post("/_sandbox/accounts", venue.admin_accounts)
    app.on_shutdown.append(venue._on_shutdown)
    return app
