"""Injected faults at the Binance sandbox (5xx, lost answers, timeouts, websocket stalls) and recovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import aiohttp
import pytest

from actors.domain.model import OrderStatus, Side
from actors.venues.binance.gateway import BinanceGateway
from actors.venues.gateway import VenueError, VenueErrorKind
from ops.sandbox.binance import Credentials, SandboxBinance
from ops.sandbox.faults import FaultInjector, FaultKind, FaultPlan, FaultRule, When
from tests.integration.sandbox.binance_support import (
    MARKET,
    below_bid,
    limit_order,
    make_test_gateway,
)

# --------------------------------------------------------------------------- faults


async def test_5xx_burst_gateway_reports_unavailable_then_succeeds(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    venue.faults.add(
        {"path": "/api/v3/order", "method": "POST", "kind": "status", "status": 503, "when": {"first": 2}}
    )
    order = limit_order("burst-1", Side.BUY, below_bid(venue, "50"), "0.001")
    for _ in range(2):
        with pytest.raises(VenueError) as err:
            await gateway.submit(order)
        assert err.value.kind is VenueErrorKind.UNAVAILABLE
        assert err.value.retryable
        assert await gateway.order("burst-1", MARKET) is None  # a refused request did nothing
    placed = await gateway.submit(order)
    assert placed.status is OrderStatus.OPEN
    assert venue.faults.stats.count("status") == 2
    assert [o.client_id for o in venue.orders()] == ["burst-1"]


@pytest.mark.parametrize("lose_mode", ["close", "504"])
async def test_lost_order_answer_order_found_by_client_id_and_resubmit_makes_no_second_order(
    venue: SandboxBinance, gateway: BinanceGateway, lose_mode: Literal["close", "504"]
) -> None:
    rule = FaultRule(
        path="/api/v3/order",
        method="POST",
        kind=FaultKind.LOSE_ANSWER,
        lose_mode=lose_mode,
        when=When(first=1),
    )
    venue.faults.add(rule)
    order = limit_order("lost-1", Side.BUY, below_bid(venue, "50"), "0.001")
    with pytest.raises(VenueError) as err:
        await gateway.submit(order)
    assert err.value.kind is VenueErrorKind.UNAVAILABLE
    found = await gateway.order("lost-1", MARKET)  # what the shell does before any retry
    assert found is not None
    assert found.status is OrderStatus.OPEN
    assert found.qty == order.qty
    with pytest.raises(VenueError) as dup:
        await gateway.submit(order)
    assert dup.value.kind is VenueErrorKind.REJECTED
    truth = [o for o in venue.orders() if o.client_id == "lost-1"]
    assert len(truth) == 1
    assert len(venue.orders()) == 1
    assert venue.faults.stats.count("lose_answer") == 1


async def test_request_timeout_fault_maps_to_unavailable_and_order_not_placed(
    venue: SandboxBinance, creds: Credentials
) -> None:
    venue.faults.add(
        {"path": "/api/v3/order", "method": "POST", "kind": "timeout", "duration_s": 5, "when": {"first": 1}}
    )
    gw = make_test_gateway(venue, creds, timeout_ms=300)
    try:
        await gw.start()
        with pytest.raises(VenueError) as err:
            await gw.submit(limit_order("slow-1", Side.BUY, below_bid(venue, "50"), "0.001"))
        assert err.value.kind is VenueErrorKind.UNAVAILABLE
        assert await gw.order("slow-1", MARKET) is None
    finally:
        await gw.close()
    assert venue.orders() == []


async def test_fault_admin_endpoints_add_count_and_clear(venue: SandboxBinance) -> None:
    async with aiohttp.ClientSession() as session:
        rule = {"path": "/api/v3/time", "kind": "status", "status": 500, "when": {"every": 2}}
        async with session.post(f"{venue.rest_url}/_sandbox/faults", json=rule) as resp:
            added = (await resp.json())["rules"][0]
        assert resp.status == 200
        assert added["id"]
        statuses = []
        for _ in range(4):
            async with session.get(f"{venue.rest_url}/api/v3/time") as r:
                statuses.append(r.status)
        assert statuses == [200, 500, 200, 500]
        async with session.get(f"{venue.rest_url}/_sandbox/faults") as resp:
            report = await resp.json()
        assert report["injected"] == {"status": 2}
        assert report["by_rule"] == {added["id"]: 2}
        async with session.post(f"{venue.rest_url}/_sandbox/faults", json={"kind": "nonsense"}) as resp:
            assert resp.status == 400
        async with session.delete(f"{venue.rest_url}/_sandbox/faults") as resp:
            assert (await resp.json())["removed"] == 1
        async with session.get(f"{venue.rest_url}/api/v3/time") as r:
            assert r.status == 200


def test_fault_plan_loads_from_json_and_toml_and_when_is_reproducible(tmp_path: Path) -> None:
    toml = tmp_path / "plan.toml"
    toml.write_text(
        '[[rules]]\npath = "/api/v3/order"\nmethod = "POST"\nkind = "status"\nstatus = 429\n'
        "retry_after_s = 2\n[rules.when]\ncalls = [2, 4]\n"
    )
    jsn = tmp_path / "plan.json"
    jsn.write_text(
        json.dumps(
            {"rules": [{"kind": "latency", "duration_s": 0.01, "when": {"probability": 0.5, "seed": 7}}]}
        )
    )
    plan = FaultPlan.from_file(toml)
    assert plan.rules[0].when.calls == (2, 4)
    assert plan.rules[0].retry_after_s == 2
    injector = FaultInjector(plan)
    hits = [injector.decide("POST", "/api/v3/order") is not None for _ in range(5)]
    assert hits == [False, True, True, False, False]
    assert injector.decide("GET", "/api/v3/order") is None
    draws = []
    for _ in range(2):
        inj = FaultInjector(FaultPlan.from_file(jsn))
        draws.append([inj.decide("GET", "/x") is not None for _ in range(20)])
    assert draws[0] == draws[1]
    assert 0 < sum(draws[0]) < 20
    with pytest.raises(ValueError, match="calls"):
        When(calls=(3, 1))


async def test_ws_gate_stall_then_drop_follow_their_call_windows() -> None:
    injector = FaultInjector()
    injector.add({"path": "/ws/*", "kind": "stall_ws", "duration_s": 0, "when": {"first": 1}})
    injector.add({"path": "/ws/*", "kind": "drop_ws", "when": {"calls": [2, 3]}})
    assert [await injector.ws_gate("/ws/btcusdt@trade") for _ in range(3)] == [True, False, True]
    assert await injector.ws_gate("/stream") is True  # other paths untouched
    assert injector.stats.injected == {"stall_ws": 1, "drop_ws": 1}
    assert injector.decide("GET", "/ws/x") is None  # websocket rules never fault HTTP
