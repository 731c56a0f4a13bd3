"""A local venue that speaks Binance's spot API and Polymarket's CLOB API over loopback."""
