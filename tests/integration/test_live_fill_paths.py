"""Pushed fills and polled fills end in the same books (issue 12): one scripted session of orders
per venue against two identical sandboxes on a frozen clock, once with the venue's user stream on
and the REST poll asleep, once with the stream off and polling alone. The real clients (ccxt and
aiohttp for Binance, py-clob-client for Polymarket) talk to the sandbox; the live venue actor and a
real LMDB store record what they learn. The sandbox's clock only moves when the script advances it,
so both sessions see the same trades at the same times, and whatever differs between the two stores
is a difference between the two fill paths."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.domain.model import Fill, Order, OrderStatus, Side, TimeInForce
from actors.domain.names import STORE, venue_name
from actors.shells.base import actor_options, remote
from actors.shells.store import StoreActor, store_path
from actors.shells.venue import VenueShell
from actors.store.lmdb_store import StateStore
from config.loader import load_settings
from config.models import Settings
from ops.sandbox_harness import SandboxThread, http_json, sandbox_ground_truth
from supervisor.control import runtime
from supervisor.control.invariants import check_invariants
from tests.runtime_harness import live_settings, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

MARKET = "binance:BTC/USDT"
TICK = Decimal("0.01")


def _paths(venue: str, pushed: bool) -> list[str]:
    """Pushed: the REST poll sleeps for an hour, fills come by the stream. Polled: no stream."""
    if pushed:
        return [
            "runtime.venue_poll_s=3600",
            f"live.{venue}.user_stream.enabled=true",
            f"live.{venue}.user_stream.backstop_poll_s=3600",
        ]
    return ["runtime.venue_poll_s=0.2", f"live.{venue}.user_stream.enabled=false"]


class CountingVenue(VenueShell):
    """The live venue actor, recording which fills of its orders the user stream carried."""

    def __init__(self, settings: Settings, venue: str) -> None:
        super().__init__(settings, venue)
        self.pushed_fill_ids: set[str] = set()

    async def on_pushed(self, pushed: Sequence[Any]) -> int:
        # every fill of our orders the stream carried, even one a submit's answer or an order
        # lookup marked seen first (a race the venue resolves by fill id): the push path must
        # carry every fill, which is what the test asserts
        self.pushed_fill_ids |= {
            p.fill.fill_id for p in pushed if p.fill is not None and p.order.client_id in self.intents
        }
        return await super().on_pushed(pushed)

    async def fill_paths(self) -> dict[str, Any]:
        return {
            "seen": sorted(self.seen_fills),
            "pushed": sorted(self.pushed_fill_ids),
            "stream_up": self.stream_up,
        }


def _last_price(base: str) -> Decimal:
    return Decimal(http_json("GET", f"{base}/api/v3/ticker/price?symbol=BTCUSDT")["price"])


def _order(n: int, market: str, side: Side, price: Decimal, qty: str, tick: Decimal = TICK) -> Order:
    return Order(
        client_id=f"rt-script-{n}",
        market=market,
        side=side,
        price=price.quantize(tick),
        qty=Decimal(qty),
        position_id=None,
        purpose="entry" if side is Side.BUY else "target_1",
    )


Trades = list[tuple[str, Decimal, Decimal]]
"""The venue's own fills of the script: (client id, qty, price)."""


def _caught_up(venue: Any, at_venue: Callable[[], Trades]) -> None:
    """On to the next step only once the actor has seen every fill the venue made: otherwise a
    later call (a cancel, the stop's last poll) could be the one that reads it."""
    made = len(at_venue())
    wait_for(
        f"the actor to see {made} fills", lambda: len(ray.get(venue.fill_paths.remote())["seen"]) >= made, 60
    )


def _binance_script(venue: Any, sandbox: dict[str, Any]) -> Trades:
    """A marketable buy, a buy resting below the market; once it traded, a sell resting above."""
    base = sandbox["binance"]["rest_url"]

    def at_venue() -> Trades:
        _orders, fills = sandbox_ground_truth(base)
        return [(f.client_id, f.qty, f.price) for f in fills if f.client_id.startswith("rt-script-")]

    def advance_until_traded(client_id: str, most: int = 240) -> None:
        for _ in range(most):
            http_json("POST", f"{base}/_sandbox/advance", {"bars": 1})
            if any(t[0] == client_id for t in at_venue()):
                break
        _caught_up(venue, at_venue)

    last = _last_price(base)
    ray.get(venue.submit.remote(_order(1, MARKET, Side.BUY, last * Decimal("1.01"), "0.02")), timeout=60)
    ray.get(venue.submit.remote(_order(2, MARKET, Side.BUY, last * Decimal("0.997"), "0.01")), timeout=60)
    advance_until_traded("rt-script-2")
    sell = _order(3, MARKET, Side.SELL, _last_price(base) * Decimal("1.0005"), "0.015")
    ray.get(venue.submit.remote(sell), timeout=60)
    advance_until_traded("rt-script-3")
    ray.get(venue.cancel_all.remote(MARKET), timeout=60)
    return at_venue()


def _polymarket_script(venue: Any, sandbox: dict[str, Any]) -> Trades:
    """On the window in progress: an immediate-or-cancel buy of Up at the best ask, a buy resting at
    the best bid (filled as the modelled asks fall to it), then a sell of the first buy's shares
    resting at the best ask."""
    base = sandbox["polymarket"]["url"]
    window = next(m for m in http_json("GET", f"{base}/markets")["data"] if m.get("accepting_orders"))
    token = window["tokens"][0]["token_id"]
    market = f"polymarket:{token}"
    by_hash: dict[str, str] = {}

    def submit(order: Order) -> None:
        ray.get(venue.submit.remote(order), timeout=60)
        view = ray.get(venue.order.remote(order.client_id), timeout=60)
        by_hash[view.venue_order_id] = order.client_id

    def at_venue() -> Trades:
        return [
            (by_hash[f["order_id"]], Decimal(f["qty"]), Decimal(f["price"]))
            for f in http_json("GET", f"{base}/_sandbox/fills")["fills"]
            if f["order_id"] in by_hash
        ]

    def touch() -> tuple[Decimal, Decimal]:
        book = http_json("GET", f"{base}/book?token_id={token}")  # best levels are listed last
        return Decimal(book["bids"][-1]["price"]), Decimal(book["asks"][-1]["price"])

    def advance_until_traded(client_id: str, most_s: int = 240) -> None:
        for _ in range(most_s // 5):
            http_json("POST", f"{base}/_sandbox/clock", {"advance_s": 5})
            if any(t[0] == client_id for t in at_venue()):
                break
        _caught_up(venue, at_venue)

    bid, ask = touch()
    submit(_order(1, market, Side.BUY, ask, "10").model_copy(update={"tif": TimeInForce.IOC}))
    _caught_up(venue, at_venue)
    submit(_order(2, market, Side.BUY, bid, "10"))
    advance_until_traded("rt-script-2")
    _bid, ask = touch()
    submit(_order(3, market, Side.SELL, ask, "10"))
    advance_until_traded("rt-script-3")
    ray.get(venue.cancel_all.remote(market), timeout=60)
    return at_venue()


SCRIPTS = {"binance": _binance_script, "polymarket": _polymarket_script}


def _settings(
    tmp: Path, sandbox: dict[str, Any], venue: str, pushed: bool, extra: Sequence[str] = ()
) -> Settings:
    name = f"t-paths-{venue}-{'pushed' if pushed else 'polled'}"
    if venue == "binance":
        return live_settings(tmp, sandbox, name, [*_paths(venue, pushed), *extra])
    env = {  # only the Polymarket venue actor runs here; live mode asks for every venue's secrets
        "RAYTRADER_SECRETS__POLYMARKET_PRIVATE_KEY": "0x" + "42" * 32,
        "RAYTRADER_SECRETS__BINANCE_API_KEY": sandbox["binance"]["api_key"],
        "RAYTRADER_SECRETS__BINANCE_API_SECRET": sandbox["binance"]["api_secret"],
    }
    overrides = [
        'mode="live"',
        "live.confirm=true",
        "live.override_paper_minimum=true",
        f'live.polymarket.url="{sandbox["polymarket"]["url"]}"',
        f'live.polymarket.ws_url="{sandbox["polymarket"]["ws_url"]}"',
        f'state_dir="{tmp / "state"}"',
        f'runtime.namespace="{name}"',
        "metrics.port=0",
        "supervision.heartbeat_interval_s=0.5",
        *_paths(venue, pushed),
        *extra,
    ]
    return load_settings(None, env=env, overrides=overrides)


def _session(tmp: Path, venue_id: str, pushed: bool) -> dict[str, Any]:
    """Run the venue's script on a fresh sandbox: the final books (as the store holds them), the
    venue's own fills of the script, and which fills came pushed."""
    thread = SandboxThread(speed=0.0)  # frozen: the clock moves only when the script advances it
    settings = _settings(tmp, thread.info, venue_id, pushed)
    store_path(settings).parent.mkdir(parents=True)
    store = remote(StoreActor).options(**actor_options(settings, STORE)).remote(settings)
    venue = (
        remote(ray.remote(CountingVenue))
        .options(**actor_options(settings, venue_name(venue_id)))
        .remote(settings, venue_id)
    )
    try:
        ray.get(venue.open_orders.remote(), timeout=120)  # ready
        if pushed:
            wait_for("the user stream", lambda: ray.get(venue.fill_paths.remote())["stream_up"], 60)
        at_venue = SCRIPTS[venue_id](venue, thread.info)

        def recorded() -> dict[str, Any] | None:
            paths: dict[str, Any] = ray.get(venue.fill_paths.remote())
            # pushed: the stream too must have carried them (a fill may be seen first otherwise)
            carried = len(paths["pushed"]) >= len(at_venue) if pushed else True
            return paths if len(paths["seen"]) >= len(at_venue) and carried else None

        paths = wait_for("every fill the venue made seen", recorded, 60)
        ray.get(venue.sync.remote(), timeout=60)  # a stop's last look: what was seen is committed
    finally:
        for handle in (venue, store):
            ray.kill(handle, no_restart=True)
        thread.stop()
    with StateStore(store_path(settings), readonly=True) as db:
        books = {
            "orders": sorted(
                (o.client_id, o.side, o.price, o.qty, o.filled_qty, o.status) for o in db.orders()
            ),
            # fill ids are the venue's trade ids: Binance's count from one, the CLOB's are random
            "fills": sorted((f.client_id, f.qty, f.price, f.fee, f.fee_asset) for f in db.fills()),
        }
        fill_ids = sorted(f.fill_id for f in db.fills())
    return {"books": books, "at_venue": sorted(at_venue), "fill_ids": fill_ids, "paths": paths}


@pytest.mark.parametrize("venue", ["binance", "polymarket"])
def test_pushed_and_polled_fill_paths_end_in_the_same_books(tmp_path: Path, venue: str) -> None:
    pushed = _session(tmp_path / "pushed", venue, pushed=True)
    polled = _session(tmp_path / "polled", venue, pushed=False)
    # the script traded all three orders, alike on both sandboxes
    assert pushed["at_venue"] == polled["at_venue"]
    assert {f[0] for f in pushed["at_venue"]} == {"rt-script-1", "rt-script-2", "rt-script-3"}
    # each path recorded exactly the venue's fills, and the two stores hold the same books
    assert [f[:3] for f in pushed["books"]["fills"]] == pushed["at_venue"]
    assert pushed["books"] == polled["books"]
    # and each came by its own path: every fill pushed in one session, none in the other
    assert pushed["paths"]["pushed"] == pushed["fill_ids"]
    assert polled["paths"]["pushed"] == []


def _clob_ground_truth(base: str, store_orders: Sequence[Order]) -> tuple[list[Order], list[Fill]]:
    """The CLOB sandbox's orders and fills of our wallet, named as the runtime names them (our
    client ids; fill ids ``polymarket:<trade>:<order>``, as the gateway reads trades)."""
    ours = {o.venue_order_id: o for o in store_orders if o.venue_order_id}
    orders = []
    for raw in http_json("GET", f"{base}/_sandbox/orders")["orders"]:
        mine = ours.get(raw["id"])
        if mine is None:
            continue
        matched, size = Decimal(raw["size_matched"]), Decimal(raw["original_size"])
        status = {"LIVE": OrderStatus.OPEN, "MATCHED": OrderStatus.FILLED}.get(
            raw["status"], OrderStatus.CANCELLED
        )
        if status is OrderStatus.OPEN and matched > 0:
            status = OrderStatus.PARTIALLY_FILLED
        orders.append(mine.model_copy(update={"filled_qty": matched, "qty": size, "status": status}))
    fills = [
        Fill.model_validate(
            {k: v for k, v in raw.items() if k in Fill.model_fields}
            | {
                "fill_id": f"polymarket:{raw['trade_id']}:{raw['order_id']}",
                "client_id": ours[raw["order_id"]].client_id,
            }
        )
        for raw in http_json("GET", f"{base}/_sandbox/fills")["fills"]
        if raw["order_id"] in ours
    ]
    return orders, fills


def test_live_polymarket_run_gets_its_fills_from_the_user_channel(tmp_path: Path) -> None:
    """Live trading on the CLOB sandbox (polymarket_lag on the RTDS reference), the REST poll
    asleep: every fill arrives pushed by the user channel, and the store matches the venue."""
    thread = SandboxThread(speed=60.0)  # a 5-minute window in 5 s
    base = thread.info["polymarket"]["url"]
    defaults = load_settings(None, env={})
    settings = _settings(
        tmp_path, thread.info, "polymarket", pushed=True, extra=["runtime.listing_refresh_s=5"]
    ).model_copy(update={"strategies": [s for s in defaults.strategies if s.kind == "polymarket_lag"]})
    runtime.start_system(settings)
    try:
        trades = wait_for("a live Polymarket round trip", lambda: runtime.read_trades(settings), 300)
        text = ray.get(runtime.supervisor_handle(settings).metrics_text.remote())
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    try:
        with StateStore(store_path(settings), readonly=True) as db:
            positions = list(db.items("position"))
            logged = [t for _seq, t in db.trades()]
            store_orders = db.orders()
            recorded = sorted(f.fill_id for f in db.fills())
        orders, fills = _clob_ground_truth(base, store_orders)
    finally:
        thread.stop()
    assert trades
    assert recorded == sorted(f.fill_id for f in fills)
    # every fill recorded while running came pushed (the poll sleeps for an hour), unless the
    # channel was re-opened (a loaded machine can overflow the sandbox's socket): each re-open
    # runs a catch-up poll; the stop's last look may add one the channel had not yet pushed
    pushed = _sample(text, "raytrader_pushed_fills_total", "polymarket")
    assert pushed >= 1
    if _sample(text, "raytrader_user_stream_reconnects_total", "polymarket") == 0:
        assert pushed == _sample(text, "raytrader_fills_total", "polymarket")
    results = check_invariants(settings, positions, logged, orders, fills, store_orders=store_orders)
    assert not [r.as_dict() for r in results if not r.ok]


def _sample(text: str, name: str, venue: str) -> float:
    found = re.search(rf'^{name}\{{venue="{venue}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0
