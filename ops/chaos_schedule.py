"""The chaos run's fault schedule: which faults, when, at what, for how long.

The schedule is a pure function of (seed, duration, kinds, rate): exponential gaps, the kinds
dealt from a seeded shuffled deck (every kind comes up once per round), so a failing seed is
reproducible. The fault kinds:

- actors: ``sigkill`` / ``ray_kill`` of a random actor of a random kind (store and supervisor too);
- cluster: ``driver_kill`` (a new driver re-attaches), ``node_loss`` (a worker node removed);
- the whole system: ``stop_resume`` (``raytrader stop``, then ``raytrader run`` on the same state)
  and ``kill_switch_resume`` (``raytrader kill-switch``, stop, run: the latch must hold across the
  restart, and the harness clears it as an operator would, ``raytrader resume``);
- state: ``strategy_replay`` (a strategy killed after its checkpoint was rewound a few faults back,
  so its restart re-emits signals already acted on: the portfolio's durable spent-signal gate must
  refuse them) and ``store_full`` (the LMDB map made full: a write must grow it and run again);
- the paper venue's edge (actors/venues/faults.py): windows of rejections (``reject_balance``,
  ``reject_min_notional``, ``reject_tick_size``) and of ``partial_fills``; call errors
  (``venue_5xx``, ``venue_429``, ``venue_timeout``, ``lost_answer``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from actors.venues.faults import REJECTION_FAULTS, VENUE_FAULTS, WINDOW_FAULTS

ACTOR_FAULTS = ("sigkill", "ray_kill")
CLUSTER_FAULTS = ("driver_kill", "node_loss")
SYSTEM_FAULTS = ("stop_resume", "kill_switch_resume")
STATE_FAULTS = ("strategy_replay", "store_full")
FAULT_KINDS = ACTOR_FAULTS + CLUSTER_FAULTS + SYSTEM_FAULTS + STATE_FAULTS + VENUE_FAULTS
ISSUE_10_KINDS = (*SYSTEM_FAULTS, *STATE_FAULTS, *REJECTION_FAULTS, "partial_fills")
"""The kinds added for issue 10: stop/resume with and without the kill switch, strategy replays,
a full store, venue rejections and partial fills."""
ACTOR_KINDS = ("store", "supervisor", "venue", "feed", "strategy", "portfolio", "position")
WARMUP_S = 15.0
COOLDOWN_S = 20.0
WINDOW_S = (3.0, 8.0)
"""A venue fault window lasts this many seconds (uniform, seeded)."""


@dataclass(frozen=True)
class FaultEvent:
    at_s: float
    kind: str
    target: str = ""
    window_s: float = 0.0


def schedule(
    seed: int, duration_s: float, kinds: tuple[str, ...] = FAULT_KINDS, per_minute: float = 12.0
) -> list[FaultEvent]:
    """The fault schedule: exponential gaps, kinds dealt from a seeded shuffled deck, targets and
    windows drawn; seeded, pure."""
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    rng = random.Random(seed)
    events: list[FaultEvent] = []
    deck: list[str] = []
    t = WARMUP_S
    end = max(WARMUP_S, duration_s - COOLDOWN_S)
    while True:
        t += rng.expovariate(per_minute / 60.0)
        if t >= end:
            break
        if not deck:
            deck = list(kinds)
            rng.shuffle(deck)
        kind = deck.pop()
        target = rng.choice(ACTOR_KINDS) if kind in ACTOR_FAULTS else ""
        window = round(rng.uniform(*WINDOW_S), 3) if kind in WINDOW_FAULTS else 0.0
        events.append(FaultEvent(round(t, 3), kind, target, window))
    return events
