"""What every actor shell shares: names, handles, heartbeats, metric deltas, checkpoints.

A shell is the thin Ray side of an actor: it feeds its core events, carries out the core's
commands, checkpoints through the Store actor and tells the supervisor it is alive. Ray
re-runs ``__init__`` on a restart, so a shell's constructor is also its recovery path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from actors.domain.names import POSITION, STORE, SUPERVISOR
from actors.domain.telemetry import Heartbeat, MetricsBuffer, state_digest
from config.models import Settings

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def actor_options(settings: Settings, name: str, **extra: Any) -> dict[str, Any]:
    """Every actor: named, restarted by Ray forever, and never retried by Ray mid-call.

    Idempotency comes from client ids and the store, not from Ray re-running a method
    that may already have sent an order (ARCHITECTURE: max_task_retries=0).
    """
    options: dict[str, Any] = {
        "name": name,
        "namespace": settings.runtime.namespace,
        "lifetime": "detached",
        "max_restarts": -1,
        "max_task_retries": 0,
        "num_cpus": settings.runtime.actor_cpus,
        "max_concurrency": 1000,
        "get_if_exists": True,  # creation is idempotent: the portfolio and the supervisor may race
    }
    if settings.runtime.spread_actors:
        options["scheduling_strategy"] = "SPREAD"
    options.update(extra)
    return options


def remote(actor_class: Any) -> Any:
    """A ``@ray.remote`` class as Ray sees it (type checkers do not know ``.options``)."""
    return actor_class


def get_actor(settings: Settings, name: str) -> Any:
    """A named actor's handle; a position's may be a pooled actor's (see :func:`try_actor`)."""
    handle = try_actor(settings, name)
    if handle is None:
        raise ValueError(f"no actor {name!r} in namespace {settings.runtime.namespace!r}")
    return handle


def _ray_actor(settings: Settings, name: str) -> Any | None:
    try:
        return ray.get_actor(name, namespace=settings.runtime.namespace)
    except ValueError:
        return None


_ALIASES: dict[tuple[str, str], str] = {}
"""This process's cache of (namespace, ``position:<id>``) -> ``pool:<n>``: an alias never changes
(a position is run by one pooled actor for life, which may run later positions after it has
closed: a call meant for a closed position is dropped by the actor). Per namespace: one process
may drive several systems (tests, benchmarks), whose position ids can coincide."""


def _alias_key(name: str) -> str:
    return f"raytrader-alias/{name}"


def register_alias(settings: Settings, name: str, ray_name: str) -> None:
    """Make ``name`` (``position:<id>``) resolve to the pooled actor ``ray_name`` (``pool:<n>``).

    Ray cannot rename an actor, so the alias lives in the GCS key-value store, beside the Ray
    names themselves and with their lifetime; the store's position record (its ``actor``) is the
    durable owner the supervisor trusts."""
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(
        _alias_key(name), ray_name, overwrite=True, namespace=settings.runtime.namespace
    )
    _ALIASES[settings.runtime.namespace, name] = ray_name


def try_actor(settings: Settings, name: str) -> Any | None:
    """A named actor's handle, or None. ``position:<id>`` is the actor of that Ray name if there is
    one, else the pooled actor (``pool:<n>``) that was assigned the position and is alive."""
    alias = _ALIASES.get((settings.runtime.namespace, name))
    if alias is not None:  # the common case for a pooled position: one GCS lookup
        found = _ray_actor(settings, alias)
        if found is not None:
            return found
    found = _ray_actor(settings, name)
    if found is not None or not name.startswith(f"{POSITION}:"):
        return found
    from ray.experimental import internal_kv

    stored = internal_kv._internal_kv_get(_alias_key(name), namespace=settings.runtime.namespace)
    if stored is None or stored.decode() == alias:
        return None
    _ALIASES[settings.runtime.namespace, name] = stored.decode()
    return _ray_actor(settings, stored.decode())


def same_actor(handle: Any, other: Any | None) -> bool:
    """Do two handles name the same Ray actor (one incarnation line, whatever names resolve to it)?"""
    return other is not None and getattr(handle, "_actor_id", None) == getattr(other, "_actor_id", ())


def _is_actor_failure(exc: BaseException) -> bool:
    """A failure of the callee actor (died, restarting, unreachable), not of the request."""
    from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError

    return isinstance(
        exc, (RayActorError, ActorDiedError, ActorUnavailableError, GetTimeoutError, asyncio.TimeoutError)
    )


class ActorShell:
    """Mixin for async actor classes: call ``_shell_start`` at the end of ``__init__``."""

    kind = "actor"

    def _shell_init(self, actor_id: str, settings: Settings) -> None:
        self.actor_id = actor_id
        self.settings = settings
        self.metrics = MetricsBuffer()
        self.seq = 0
        self.incarnation = f"{os.getpid()}-{time.time_ns()}"
        self.last_progress_ms = wall_ms()
        self.last_event_ms: int | None = None
        self._store: Any = None
        self._supervisor: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._handles: dict[str, Any] = {}
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = get_actor(self.settings, STORE)
        return self._store

    async def store_call(self, method: str, *args: Any, deadline_s: float = 60.0) -> Any:
        """Call the Store actor, retrying while it restarts: a durable write must not be dropped."""
        delay = 0.05
        waited = 0.0
        while True:
            try:
                return await getattr(self.store, method).remote(*args)
            except Exception as exc:
                if waited >= deadline_s or not _is_actor_failure(exc):
                    raise
                self._store = None  # it may have been re-created under its name
                log.warning(
                    "%s: store unavailable (%s); retrying in %.2fs", self.actor_id, type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                waited += delay
                delay = min(1.0, delay * 2)

    async def call_with_retry(self, name: str, method: str, *args: Any, deadline_s: float = 60.0) -> Any:
        """Call a named actor, retrying while it restarts (for calls that are safe to repeat)."""
        delay = 0.05
        waited = 0.0
        while True:
            handle = self.handle(name)
            try:
                if handle is None:
                    raise LookupError(f"actor {name} not found")
                return await getattr(handle, method).remote(*args)
            except Exception as exc:
                if waited >= deadline_s or not (_is_actor_failure(exc) or isinstance(exc, LookupError)):
                    raise
                self.forget(name)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(1.0, delay * 2)

    async def node_id(self) -> str:
        """The Ray node this incarnation runs on (cluster tests and drills)."""
        return str(ray.get_runtime_context().get_node_id())

    async def pid(self) -> int:
        """The worker process id (for drills and chaos: SIGKILL it)."""
        return os.getpid()

    def handle(self, name: str) -> Any | None:
        """A cached handle to a named actor (handles survive Ray restarts); None if absent."""
        cached = self._handles.get(name)
        if cached is None:
            cached = try_actor(self.settings, name)
            if cached is not None:
                self._handles[name] = cached
        return cached

    def forget(self, name: str) -> None:
        """Drop a cached handle after a call failed: the actor may have been re-created."""
        self._handles.pop(name, None)

    def _spawn(self, coro: Any) -> None:
        """Run a background loop on the actor's event loop (resumes by itself after a restart)."""
        self._tasks.append(asyncio.get_event_loop().create_task(coro))

    async def _every(
        self, what: str, interval_s: Callable[[], float], body: Callable[[], Awaitable[bool | None]]
    ) -> None:
        """Run ``body`` every ``interval_s()`` seconds until it returns True. An exception is logged
        and counted (``raytrader_loop_errors_total``) and the loop goes on: a periodic duty (exit
        timers, fill polls, checkpoints) must not die with one bad turn."""
        while True:
            await asyncio.sleep(interval_s())
            try:
                if await body():
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.inc("raytrader_loop_errors_total", {"kind": self.kind, "loop": what})
                log.exception("%s: %s failed; trying again next interval", self.actor_id, what)

    def _shell_start(self) -> None:
        self._spawn(self._heartbeat_loop())

    def progressed(self, event_ms: int | None = None) -> None:
        self.last_progress_ms = wall_ms()
        if event_ms is not None:
            self.last_event_ms = event_ms

    # ------------------------------------------------------------------ overridable

    def owned_orders(self) -> tuple[str, ...]:
        return ()

    def heartbeat_detail(self) -> dict[str, Any]:
        return {}

    def digest_source(self) -> Any:
        return None

    # ------------------------------------------------------------------ heartbeats

    def make_heartbeat(self) -> Heartbeat:
        self.seq += 1
        return Heartbeat(
            actor_id=self.actor_id,
            kind=self.kind,
            seq=self.seq,
            incarnation=self.incarnation,
            wall_ms=wall_ms(),
            last_progress_ms=self.last_progress_ms,
            event_ms=self.last_event_ms,
            digest=state_digest(self.digest_source()),
            owned_orders=self.owned_orders(),
            detail=self.heartbeat_detail(),
            metrics=self.metrics.drain(),
        )

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.supervision.heartbeat_interval_s
        while True:
            await self.beat()
            await asyncio.sleep(interval)

    async def beat(self) -> None:
        """Send one heartbeat now; metric deltas that cannot be delivered are kept for the next."""
        heartbeat = self.make_heartbeat()
        try:
            if self._supervisor is None:
                self._supervisor = get_actor(self.settings, SUPERVISOR)
            await asyncio.wait_for(self._supervisor.heartbeat.remote(heartbeat), timeout=5.0)
        except Exception as exc:  # supervisor restarting or gone: keep the deltas, try again later
            self._supervisor = None
            self.metrics.restore(heartbeat.metrics)
            log.debug("%s: heartbeat not delivered: %s", self.actor_id, exc)

    async def ping(self) -> str:
        """Liveness probe for the supervisor: answers with this incarnation."""
        return self.incarnation
