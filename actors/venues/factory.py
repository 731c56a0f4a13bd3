"""Which real-client gateway serves a venue, pointed at its configured endpoint (venue or sandbox)."""

from __future__ import annotations

from actors.venues.gateway import VenueGateway
from config.models import Settings


def make_gateway(settings: Settings, venue: str) -> VenueGateway:
    """The real-client gateway of one venue, pointed at the configured endpoint (venue or sandbox)."""
    live, secrets = settings.live, settings.secrets
    if venue == "binance":
        from actors.venues.binance.gateway import BinanceGateway

        return BinanceGateway(
            rest_url=live.binance.url,
            ws_url=live.binance.ws_url,
            api_key=secrets.binance_api_key,
            api_secret=secrets.binance_api_secret,
        )
    if venue == "polymarket":
        from actors.venues.polymarket.gateway import PolymarketGateway

        key = secrets.polymarket_private_key
        if key is None:
            raise ValueError("live polymarket needs secrets.polymarket_private_key")
        return PolymarketGateway(live.polymarket.url, key.get_secret_value())
    raise ValueError(f"no live gateway for venue {venue!r}")
