"""Strategy cores: bars and books in, signals out. Pure, deterministic, checkpointable."""

from __future__ import annotations

import importlib
from typing import Any

from actors.core.strategies.base import StrategyCore

# kind -> "module:Class"; imported lazily so a light strategy never pays for scikit-learn.
_REGISTRY: dict[str, str] = {
    "momentum_breakout": "actors.core.strategies.momentum_breakout:MomentumBreakout",
    "mean_reversion": "actors.core.strategies.mean_reversion:MeanReversion",
    "ml_momentum": "actors.core.strategies.ml_momentum:MlMomentum",
    "polymarket_lag": "actors.core.strategies.polymarket_lag:PolymarketLag",
}


def strategy_class(kind: str) -> type[StrategyCore[Any]]:
    """The core class for a strategy kind; KeyError names the known kinds."""
    try:
        module_name, class_name = _REGISTRY[kind].split(":")
    except KeyError:
        raise KeyError(f"unknown strategy kind {kind!r}; known: {sorted(_REGISTRY)}") from None
    cls: type[StrategyCore[Any]] = getattr(importlib.import_module(module_name), class_name)
    return cls


def build_strategy(config: Any) -> StrategyCore[Any]:
    """A fresh core for one strategy config (any of config.models.StrategyConfig)."""
    return strategy_class(config.kind)(config)


__all__ = ["StrategyCore", "build_strategy", "strategy_class"]
