"""Pure, deterministic trading cores (no Ray, no I/O, no clock).

Strategies, portfolio, position exits, matching, fees, pricing.
"""
