"""Market data in: candle files, Polymarket data and book models, the replay, live sources."""
