"""Fuzzing the Polymarket CLOB sandbox over HTTP: public and L2 endpoints, L1 headers, signed orders.

It answers every request with JSON, a 4xx (never a 5xx from an unhandled exception) for what it
refuses, and a refused request leaves its ground truth (orders, fills, balances, payouts)
unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from eth_account import Account
from eth_utils.crypto import keccak
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ops.sandbox.clob import EXCHANGES, ZERO_ADDRESS, SandboxClob, clob_app, hmac_signature, order_message
from tests.property.fuzz_inputs import FUZZ, dumps, json_values, nasty_text, params_strategy
from tests.property.sandbox_http import Served, query_of, request

MAKER = Account.from_key(keccak(text="raytrader fuzz maker"))


class ClobRig:
    def __init__(self, served: Served) -> None:
        self.served = served

        async def start() -> tuple[SandboxClob, web.AppRunner]:
            venue = SandboxClob(initial_usdc=10_000)
            runner = web.AppRunner(clob_app(venue))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            return venue, runner

        self.venue, self.runner = served.run(start())
        self.port = int(self.runner.addresses[0][1])
        self.creds = served.call(lambda: self.venue.create_api_key(MAKER.address))
        self.token = served.call(lambda: self.venue.open_markets()[0].token_ids[0])
        self.fee = self.get_json(f"/fee-rate?token_id={self.token}")["base_fee"]
        neg_risk = self.get_json(f"/neg-risk?token_id={self.token}")["neg_risk"]
        self.exchange = EXCHANGES[137][1 if neg_risk else 0]

    def get_json(self, target: str) -> Any:
        status, raw = request(self.port, "GET", target)
        assert status == 200, raw
        return json.loads(raw)

    def truth(self) -> Any:
        v = self.venue
        return self.served.call(
            lambda: (v.orders(), v.fills(), v.balances(MAKER.address), [p.token for p in v.payouts()])
        )

    def l2(self, method: str, path: str, body: str | None) -> dict[str, str]:
        ts = str(int(time.time()))
        c = self.creds
        return {
            "POLY_ADDRESS": c.address,
            "POLY_SIGNATURE": hmac_signature(c.secret, ts, method, path, body),
            "POLY_TIMESTAMP": ts,
            "POLY_API_KEY": c.api_key,
            "POLY_PASSPHRASE": c.passphrase,
            "Content-Type": "application/json",
        }

    def send(
        self,
        method: str,
        target: str,
        body: str | bytes | None = None,
        headers: dict[str, Any] | None = None,
        *,
        auth: bool = False,
    ) -> tuple[int, Any]:
        raw_body = body.encode() if isinstance(body, str) else body
        if auth:
            text = raw_body.decode("utf-8", "replace") if raw_body else None
            headers = {**self.l2(method, target.split("?", 1)[0], text), **(headers or {})}
        status, raw = request(self.port, method, target, raw_body, headers)
        assert status < 500, (method, target, (raw_body or b"")[:200], raw[:300])
        doc = json.loads(raw)
        if status >= 400:
            assert isinstance(doc, dict), doc
            assert isinstance(doc.get("error"), str), doc
        return status, doc


@pytest.fixture(scope="module")
def clob(served: Served) -> Iterator[ClobRig]:
    rig = ClobRig(served)
    yield rig
    served.run(rig.runner.cleanup())


CLOB_GETS = [
    "/book",
    "/midpoint",
    "/price",
    "/spread",
    "/last-trade-price",
    "/tick-size",
    "/neg-risk",
    "/fee-rate",
]


@FUZZ
@given(data=st.data(), path=st.sampled_from(CLOB_GETS))
def test_clob_public_endpoints_answer_json_4xx_for_nonsense(
    clob: ClobRig, data: st.DataObject, path: str
) -> None:
    params = data.draw(params_strategy({"token_id": clob.token, "side": "BUY"}, ["next_cursor"]))
    clob.send("GET", f"{path}?{query_of(params)}")


@FUZZ
@given(
    cursor=nasty_text | st.binary(max_size=20).map(lambda b: __import__("base64").b64encode(b).decode()),
    condition=nasty_text,
)
def test_clob_market_paging_and_lookup_refuse_nonsense(clob: ClobRig, cursor: str, condition: str) -> None:
    clob.send("GET", f"/markets?{query_of({'next_cursor': cursor})}")
    clob.send("GET", f"/markets/{quote(condition, safe='')}" if condition else "/markets/%20")


L2_BODIES = [
    ("POST", "/order"),
    ("POST", "/orders"),
    ("DELETE", "/order"),
    ("DELETE", "/orders"),
    ("DELETE", "/cancel-market-orders"),
    ("DELETE", "/cancel-all"),
    ("POST", "/books"),
]


@FUZZ
@given(
    value=json_values | st.binary(max_size=100),
    which=st.integers(0, len(L2_BODIES) - 1),
    signed=st.booleans(),
)
def test_clob_bodies_refused_without_touching_ground_truth(
    clob: ClobRig, value: Any, which: int, signed: bool
) -> None:
    method, path = L2_BODIES[which]
    body = value if isinstance(value, bytes) else dumps(value)
    before = clob.truth()
    status, doc = clob.send(method, path, body, auth=signed)
    if status >= 400 or (path == "/orders" and method == "POST" and not any(d.get("success") for d in doc)):
        assert clob.truth() == before


@FUZZ
@given(data=st.data(), path=st.sampled_from(["/data/orders", "/data/trades", "/balance-allowance"]))
def test_clob_l2_queries_refuse_nonsense(clob: ClobRig, data: st.DataObject, path: str) -> None:
    base = {"next_cursor": "MA==", "market": "0x1", "asset_id": clob.token, "after": "1", "before": "2"}
    base |= {"asset_type": "CONDITIONAL", "token_id": clob.token, "id": "x", "maker_address": MAKER.address}
    params = data.draw(params_strategy(base, []))
    clob.send("GET", f"{path}?{query_of(params)}", auth=True)


header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x6FF, exclude_categories=("Cc",)), max_size=30
)
"""Header values a client can send (control characters are refused by the HTTP parser itself)."""


@FUZZ
@given(
    address=st.sampled_from(["", MAKER.address, "0x" + "zz" * 20, "0x" + "11" * 19]) | header_text,
    signature=st.sampled_from(["", "0x00", "0x" + "ab" * 65]) | header_text,
    timestamp=header_text,
    nonce=st.sampled_from(["0", "²", "٣", "9" * 5000, str(2**256), str(2**256 - 1), "-1", ""]) | header_text,
    path=st.sampled_from([("POST", "/auth/api-key"), ("GET", "/auth/derive-api-key")]),
)
def test_clob_l1_headers_refused_without_a_crash(
    clob: ClobRig, address: str, signature: str, timestamp: str, nonce: str, path: tuple[str, str]
) -> None:
    """Found by fuzzing: a POLY_NONCE of '²', 5000 digits or >= 2**256 used to answer 500."""
    values = {"POLY_ADDRESS": address, "POLY_SIGNATURE": signature, "POLY_TIMESTAMP": timestamp}
    values["POLY_NONCE"] = nonce
    headers: dict[str, Any] = {k: v.encode() for k, v in values.items()}  # UTF-8 bytes, as sent
    status, _ = clob.send(path[0], path[1], headers=headers)
    assert status == 401


AMOUNTS = (
    st.integers(0, 77).map(lambda e: 10**e)  # every magnitude, lot-aligned from 1e4 up
    | st.integers(0, 10**12).map(lambda n: n * 10**4)  # whole cents of a share or a dollar
    | st.integers(0, 2**256 - 1)
    | st.sampled_from([0, 1, 2**255, 2**256 - 1])
)


@st.composite
def priced_amounts(draw: st.DrawFn) -> tuple[int, int]:
    """(shares, usdc) in 1e-6 units: whole cents of shares at an exact price of any magnitude."""
    shares = draw(st.integers(1, 10**6) | st.integers(0, 60).map(lambda e: 10**e)) * 10**4
    price_units = draw(st.integers(1, 99)) * 10 ** draw(st.integers(-80, 80))  # k * 10**e, exact
    usdc = Fraction(shares) * Fraction(price_units)
    assume(usdc.denominator == 1 and 0 < usdc < 2**256 and shares < 2**256)
    return shares, int(usdc)


@settings(FUZZ, max_examples=300)
@given(
    side=st.sampled_from([0, 1]),
    raw_amounts=st.tuples(AMOUNTS, AMOUNTS) | priced_amounts(),
    expiration=st.sampled_from([0, 0, 1, 2**64, 2**256 - 1]),
    fee_delta=st.sampled_from([0, 0, 0, 1]),
    order_type=st.sampled_from(["GTC", "GTC", "GTD", "FOK", "FAK", "XYZ", 5, None, None]),
    post_only=st.sampled_from([False, None, None, True, "yes"]),
    salt=st.integers(0, 2**53),
)
def test_clob_validly_signed_orders_with_extreme_amounts_answer_4xx_not_500(
    clob: ClobRig,
    side: int,
    raw_amounts: tuple[int, int],
    expiration: int,
    fee_delta: int,
    order_type: Any,
    post_only: Any,
    salt: int,
) -> None:
    """Signed exactly as py-clob-client signs, so validation runs past the signature check."""
    shares, usdc = raw_amounts
    maker_amount, taker_amount = (usdc, shares) if side == 0 else (shares, usdc)
    fields = {
        "salt": salt,
        "maker": MAKER.address,
        "signer": MAKER.address,
        "taker": ZERO_ADDRESS,
        "tokenId": int(clob.token),
        "makerAmount": maker_amount,
        "takerAmount": taker_amount,
        "expiration": expiration,
        "nonce": 0,
        "feeRateBps": clob.fee + fee_delta,
        "side": side,
        "signatureType": 0,
    }
    signed = Account.sign_message(order_message(fields, 137, clob.exchange), private_key=MAKER.key)
    order = {k: str(v) if isinstance(v, int) and k != "salt" else v for k, v in fields.items()}
    order["side"] = "BUY" if side == 0 else "SELL"
    order["signature"] = "0x" + bytes(signed.signature).hex()
    payload: dict[str, Any] = {"order": order, "owner": clob.creds.api_key}
    if order_type is not None:
        payload["orderType"] = order_type
    if post_only is not None:
        payload["postOnly"] = post_only
    before = clob.truth()
    status, _ = clob.send("POST", "/order", json.dumps(payload), auth=True)
    if status >= 400:
        assert clob.truth() == before


def test_clob_huge_price_refused_by_tick_rule_not_500(clob: ClobRig) -> None:
    """Found by fuzzing: price 1e64 made ``price % tick`` raise DivisionImpossible (a 500)."""
    fields = {
        "salt": 7,
        "maker": MAKER.address,
        "signer": MAKER.address,
        "taker": ZERO_ADDRESS,
        "tokenId": int(clob.token),
        "makerAmount": 10**70,
        "takerAmount": 10**6,
        "expiration": 0,
        "nonce": 0,
        "feeRateBps": clob.fee,
        "side": 0,
        "signatureType": 0,
    }
    signed = Account.sign_message(order_message(fields, 137, clob.exchange), private_key=MAKER.key)
    order = {k: str(v) for k, v in fields.items()} | {"side": "BUY", "salt": 7}
    order["signature"] = "0x" + bytes(signed.signature).hex()
    status, doc = clob.send(
        "POST", "/order", json.dumps({"order": order, "owner": clob.creds.api_key}), auth=True
    )
    assert status == 400
    assert "breaks minimum tick size rule" in doc["error"]


@pytest.mark.parametrize(
    "body",
    [
        '{"advance_s": Infinity}',
        '{"advance_s": -Infinity}',
        '{"advance_s": NaN}',
        '{"advance_s": 1e400}',
        '{"advance_s": "x"}',
        '{"advance_s": -5}',
        '{"to_ms": [1]}',
        '{"to_ms": "NaN"}',
        '{"to_ms": Infinity}',
        "[]",
        "{",
    ],
)
def test_clob_admin_clock_refuses_non_finite_moves(clob: ClobRig, body: str) -> None:
    """Found by fuzzing: {"advance_s": Infinity} raised OverflowError (a 500)."""
    now = clob.served.call(lambda: clob.venue.now_ms)
    status, _ = clob.send("POST", "/_sandbox/clock", body)
    assert status == 400
    assert clob.served.call(lambda: clob.venue.now_ms) == now
