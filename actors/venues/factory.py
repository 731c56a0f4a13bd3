"""Which real-client gateway serves a venue, and where its endpoints are (venue or sandbox).

Endpoints are resolved here and nowhere else, so what ``raytrader config check --live`` prints
is what the gateways and live feeds connect to.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.venues.gateway import VenueGateway, stream_url
from config.models import POLYMARKET_MARKET_WS_URL, POLYMARKET_REST_URL, POLYMARKET_RTDS_URL, Settings


@dataclass(frozen=True)
class Endpoints:
    venue: str
    rest_url: str
    ws_url: str
    prices_url: str | None = None
    """Polymarket: the RTDS socket of the Chainlink reference prices."""


def resolve_endpoints(settings: Settings, venue: str) -> Endpoints:
    """The REST and websocket URLs of one venue as configured.

    An explicit ``ws_url`` wins; the real venues stream from their own stream hosts (Binance's
    ``stream.binance.com``, Polymarket's ``ws-subscriptions-clob``), not from the REST host;
    any other host (a sandbox) serves its streams beside its REST API.
    """
    live = settings.live
    if venue == "binance":
        from actors.venues.binance.client import stream_url_for

        rest = live.binance.url.rstrip("/")
        return Endpoints(venue, rest, live.binance.ws_url or stream_url_for(rest))
    if venue == "polymarket":
        rest = live.polymarket.url.rstrip("/")
        ws = live.polymarket.ws_url or stream_url(
            rest, POLYMARKET_REST_URL, POLYMARKET_MARKET_WS_URL, "/ws/market"
        )
        rtds = live.polymarket.rtds_url or stream_url(rest, POLYMARKET_REST_URL, POLYMARKET_RTDS_URL, "/rtds")
        return Endpoints(venue, rest, ws, rtds)
    raise ValueError(f"no live endpoints for venue {venue!r}")


def make_gateway(settings: Settings, venue: str, *, market_data: bool = False) -> VenueGateway:
    """The real-client gateway of one venue, pointed at the configured endpoint (venue or sandbox).

    ``market_data``: for a feed, which reads public data only: Polymarket's then works without a
    wallet key (paper trading on live data needs none) and creates no API credentials."""
    secrets = settings.secrets
    endpoints = resolve_endpoints(settings, venue)
    if venue == "binance":
        from actors.venues.binance.gateway import BinanceGateway

        return BinanceGateway(
            rest_url=endpoints.rest_url,
            ws_url=endpoints.ws_url,
            api_key=secrets.binance_api_key,
            api_secret=secrets.binance_api_secret,
        )
    if venue == "polymarket":
        from actors.venues.polymarket.gateway import PolymarketGateway

        key = secrets.polymarket_private_key
        if market_data:
            return PolymarketGateway(endpoints.rest_url, None)
        if key is None:
            raise ValueError("live polymarket needs secrets.polymarket_private_key")
        # the market channel too: a pushed tick change reaches the orders before the REST cache does
        return PolymarketGateway(endpoints.rest_url, key.get_secret_value(), ws_url=endpoints.ws_url)
    raise ValueError(f"no live gateway for venue {venue!r}")
