"""The vocabulary every actor shares: the model, typed messages, actor and market names, telemetry."""
