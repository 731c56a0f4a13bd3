"""`raytrader watch`: a dead man's switch that runs outside Ray, on what the system leaves on disk.

Everything inside Ray can go quiet at once (the cluster, the supervisor, the store actor), and
then nobody inside is left to say so. The supervisor therefore writes a health record to the
LMDB store on every control-loop tick (``meta/health``, :func:`health_record`): the wall time
of the tick, when something was last traded or evaluated, whether the no-activity alert is up,
and, on a clean stop, ``stopped``. This module reads that record with a read-only
:class:`~actors.store.lmdb_store.StateStore` (plain Python: it imports neither Ray nor anything
that does) and decides (:func:`judge`):

* ``ok``: the record was written within ``silent_after_s``;
* ``stopped``: the last record says the system was stopped cleanly: silence by intent, no alert;
* ``silent``: the record is older than ``silent_after_s``, missing, or the store cannot be read:
  a ``system_silent`` alert (log + notifier). The whole system is down, hung, or cannot write.

:func:`watch` checks once (``--once``: for cron and tests; the exit code says it) or every
``interval_s``, alerting once per silence and logging when the writes resume. The record's
time is the writer's wall clock: run the watch on the machine that holds the store (the LMDB
file is local to the head node anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.store.lmdb_store import StateStore
from actors.store.records import StoreError
from supervisor.control.notifier import Alert, AlertKind, Notifier, wall_ms

log = logging.getLogger(__name__)

HEALTH_KIND = "meta"
HEALTH_KEY = "health"
"""Where the supervisor's health record lives: ``meta/health`` (operational, not trading state)."""

OK = "ok"
STOPPED = "stopped"
SILENT = "silent"


def health_record(
    *,
    wall_ms: int,
    last_activity_ms: int,
    no_activity: bool,
    kill_switch_latched: bool,
    ticks: int,
    stopped: bool = False,
) -> dict[str, Any]:
    """What the supervisor writes each tick (and once more, ``stopped``, on a clean stop)."""
    return {
        "wall_ms": wall_ms,
        "last_activity_ms": last_activity_ms,
        "no_activity": no_activity,
        "kill_switch_latched": kill_switch_latched,
        "ticks": ticks,
        "stopped": stopped,
    }


@dataclass(frozen=True)
class Verdict:
    """One look at the store: ``state`` is ok, stopped or silent; ``age_s`` the record's age."""

    state: str
    reason: str
    age_s: float | None = None
    record: Mapping[str, Any] | None = None

    @property
    def silent(self) -> bool:
        return self.state == SILENT

    def line(self) -> str:
        """One line for a person or a cron mail."""
        text = f"{self.state}: {self.reason}"
        record = self.record or {}
        if record.get("last_activity_ms") is not None and self.age_s is not None:
            activity_s = (int(record["wall_ms"]) - int(record["last_activity_ms"])) / 1000
            text += f"; last trade or evaluated signal {activity_s:.0f}s before that"
            if record.get("no_activity"):
                text += " (no-activity alert up)"
        if record.get("kill_switch_latched"):
            text += "; kill switch LATCHED"
        return text


def judge(record: Mapping[str, Any] | None, now_ms: int, silent_after_s: float) -> Verdict:
    """Is the system alive, stopped on purpose, or silent? (Pure: the record and the time in.)"""
    if record is None:
        return Verdict(SILENT, "no health record in the store (never started, or too old a version)")
    age_s = max(0.0, (now_ms - int(record["wall_ms"])) / 1000)
    if record.get("stopped"):
        return Verdict(STOPPED, f"stopped cleanly {age_s:.0f}s ago", age_s, record)
    if age_s >= silent_after_s:
        reason = f"nothing written for {age_s:.0f}s (limit {silent_after_s:.0f}s)"
        return Verdict(SILENT, reason, age_s, record)
    return Verdict(OK, f"health record written {age_s:.1f}s ago", age_s, record)


def read_health(store_dir: Path) -> Mapping[str, Any] | None:
    """The health record, read-only (raises :class:`StoreError` when the store cannot be read)."""
    with StateStore(store_dir, readonly=True) as db:
        return db.get(HEALTH_KIND, HEALTH_KEY)


def look(store_dir: Path, now_ms: int, silent_after_s: float) -> Verdict:
    """:func:`judge` of what is on disk now; a store that cannot be read is silent too."""
    try:
        record = read_health(store_dir)
    except StoreError as exc:
        return Verdict(SILENT, f"cannot read the state store: {exc}")
    return judge(record, now_ms, silent_after_s)


def silence_alert(verdict: Verdict, store_dir: Path) -> Alert:
    return Alert(
        kind=AlertKind.SYSTEM_SILENT,
        summary=f"raytrader wrote nothing to {store_dir}: {verdict.reason}",
        key=str(store_dir),
        details={"store": str(store_dir), "age_s": verdict.age_s, "record": dict(verdict.record or {})},
    )


async def watch(
    store_dir: Path,
    notifier: Notifier,
    *,
    silent_after_s: float,
    interval_s: float = 10.0,
    once: bool = False,
    clock: Callable[[], int] = wall_ms,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rounds: int | None = None,
) -> Verdict:
    """Look at the store once (``once``) or every ``interval_s`` until cancelled (or ``rounds``
    looks, for tests): a silence is alerted once, through the log and the notifier, and the
    return of writes is logged. Returns the last verdict."""
    alerted = False
    done = 0
    while True:
        verdict = look(store_dir, clock(), silent_after_s)
        if verdict.silent and not alerted:
            log.error("raytrader is silent: %s", verdict.line())
            await notifier.notify(silence_alert(verdict, store_dir))
            alerted = True
        elif not verdict.silent and alerted:
            log.warning("raytrader writes again: %s", verdict.line())
            alerted = False
        else:
            log.info("%s", verdict.line())
        done += 1
        if once or (rounds is not None and done >= rounds):
            return verdict
        await sleep(interval_s)
