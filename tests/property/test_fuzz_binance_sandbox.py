"""Fuzzing the Binance sandbox over HTTP.

It answers every request with JSON, a 4xx (never a 5xx from an unhandled exception) for what it
refuses, and a refused request leaves its ground truth (orders, fills, balances) unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.sandbox.binance import BookModel, SandboxBinance
from tests.property.fuzz_inputs import FUZZ, dumps, json_values, params_strategy
from tests.property.sandbox_http import Served, query_of, request


class BinanceRig:
    def __init__(self, served: Served) -> None:
        self.served = served

        async def start() -> SandboxBinance:
            venue = SandboxBinance(
                start_bar=100, weight_limit=10**12, book=BookModel(level_qty=Decimal("0.01"), levels=3)
            )
            await venue.start_server()
            return venue

        self.venue = served.run(start())
        self.creds = served.call(lambda: self.venue.create_account({"USDT": "1000000", "BTC": "100"}))
        self.port = int(self.venue.rest_url.rsplit(":", 1)[1])
        bid = served.call(lambda: self.venue.book().best_bid)
        assert bid is not None
        self.bid = bid

    def truth(self) -> Any:
        v = self.venue
        return self.served.call(
            lambda: (v.ground_truth_orders(), v.ground_truth_fills(), v.balances(self.creds.account))
        )

    def signed(self, params: dict[str, str]) -> str:
        if "timestamp" not in params:
            params = {**params, "timestamp": str(int(time.time() * 1000))}
        query = query_of(params)
        signature = hmac.new(self.creds.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return f"{query}&signature={signature}"

    def send(
        self, method: str, path: str, query: str = "", body: bytes | None = None, signed: bool = False
    ) -> tuple[int, Any]:
        headers = {"X-MBX-APIKEY": self.creds.api_key} if signed else {}
        status, raw = request(self.port, method, f"{path}?{query}" if query else path, body, headers)
        assert status < 500, (method, path, query, raw[:300])
        doc = json.loads(raw)
        if status >= 400:
            assert isinstance(doc, dict), doc
            assert isinstance(doc.get("code"), int), doc
            assert isinstance(doc.get("msg"), str), doc
        return status, doc


@pytest.fixture(scope="module")
def binance(served: Served) -> Iterator[BinanceRig]:
    rig = BinanceRig(served)
    yield rig
    served.run(rig.venue.stop_server())


PUBLIC = [
    (
        "/api/v3/klines",
        {"symbol": "BTCUSDT", "interval": "1m", "limit": "5", "startTime": "0", "endTime": "0"},
    ),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "5"}),
    ("/api/v3/trades", {"symbol": "BTCUSDT", "limit": "5"}),
    (
        "/api/v3/aggTrades",
        {"symbol": "BTCUSDT", "limit": "5", "fromId": "1", "startTime": "1", "endTime": "1"},
    ),
    ("/api/v3/exchangeInfo", {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}),
    ("/api/v3/ping", {}),
    ("/api/v3/time", {}),
]
SIGNED = [
    ("GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "fz-1", "orderId": "1"}),
    ("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "fz-1", "orderId": "1"}),
    ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
    ("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
    ("GET", "/api/v3/account", {"omitZeroBalances": "true", "recvWindow": "5000"}),
    (
        "GET",
        "/api/v3/myTrades",
        {"symbol": "BTCUSDT", "orderId": "1", "startTime": "1", "endTime": "1", "fromId": "1", "limit": "5"},
    ),
]
ORDER_KEYS = ["side", "type", "timeInForce", "price", "quantity", "quoteOrderQty", "newOrderRespType"]


@FUZZ
@given(data=st.data(), which=st.integers(0, len(PUBLIC) - 1))
def test_binance_public_endpoints_answer_json_4xx_for_nonsense(
    binance: BinanceRig, data: st.DataObject, which: int
) -> None:
    path, base = PUBLIC[which]
    params = data.draw(params_strategy(base, ["limit", "recvWindow", "x"]))
    binance.send("GET", path, query_of(params))


@FUZZ
@given(data=st.data(), which=st.integers(0, len(SIGNED) - 1))
def test_binance_signed_endpoints_refuse_nonsense_and_keep_ground_truth(
    binance: BinanceRig, data: st.DataObject, which: int
) -> None:
    method, path, base = SIGNED[which]
    params = data.draw(params_strategy(base, ["timestamp", "recvWindow", "limit"]))
    before = binance.truth()
    status, _ = binance.send(method, path, binance.signed(params), signed=True)
    if status >= 400:
        assert binance.truth() == before


@FUZZ
@given(data=st.data())
def test_binance_new_order_with_nonsense_rejected_and_nothing_recorded(
    binance: BinanceRig, data: st.DataObject
) -> None:
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": str(binance.bid - 50),
        "newClientOrderId": f"fz-{data.draw(st.integers(0, 10**9))}",
    }
    params = data.draw(params_strategy(base, [*ORDER_KEYS, "recvWindow", "timestamp"]))
    before = binance.truth()
    status, _ = binance.send("POST", "/api/v3/order", binance.signed(params), signed=True)
    if status >= 400:
        assert binance.truth() == before


@FUZZ
@given(
    body=st.binary(max_size=200) | json_values.map(lambda v: dumps(v).encode()),
    path=st.sampled_from(["/api/v3/order", "/api/v3/depth", "/api/v3/account", "/_sandbox/advance"]),
    key=st.sampled_from(["", "x", "é", "a" * 101]) | st.text(alphabet="abcXYZ019 ", max_size=20),
)
def test_binance_garbage_bodies_and_keys_refused(
    binance: BinanceRig, body: bytes, path: str, key: str
) -> None:
    before = binance.truth()
    headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    method = "GET" if path == "/api/v3/depth" else "POST"
    if path == "/_sandbox/advance":  # the admin endpoint: only refusals, never a clock move, here
        body = body if not body.strip().startswith(b"{") else b'{"bars": ' + body + b"}"
    status, raw = request(binance.port, method, path, body, headers)
    assert status < 500, (path, body[:100], raw[:200])
    json.loads(raw)
    if status >= 400 and path != "/api/v3/depth":
        assert binance.truth() == before


@pytest.mark.parametrize("bars", ["Infinity", "1e400", "-Infinity", "NaN", '"x"', "[1]", "-1"])
def test_binance_admin_advance_refuses_non_finite_bars(binance: BinanceRig, bars: str) -> None:
    """Found by fuzzing: {"bars": Infinity} raised OverflowError, a plain-text 500."""
    state = binance.served.call(binance.venue.state_json)
    status, raw = request(binance.port, "POST", "/_sandbox/advance", f'{{"bars": {bars}}}'.encode())
    assert status == 400, raw
    assert "error" in json.loads(raw)
    assert binance.served.call(binance.venue.state_json)["bar_index"] == state["bar_index"]
