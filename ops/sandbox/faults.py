"""Scriptable fault injection for the loopback sandbox venues (any aiohttp app).

A ``FaultPlan`` is a list of ``FaultRule``: *which* requests (path glob, method), *what*
happens to them (``kind``) and *when* (``When``: every Nth matching call, the first N, calls
in ``[a, b)``, or with a seeded probability; conditions given together must all hold).
Call numbers count, per rule, the requests that match its path and method, from 1.

Kinds:

* ``latency``: wait ``duration_s`` (default 0.5 s), then serve the request normally.
* ``status``: answer ``status`` (default 503; 429 and 5xx are the useful ones) without
  serving the request, with an optional ``Retry-After`` header and JSON ``body``.
* ``timeout``: hold the request for up to ``duration_s`` (default 30 s, at most 300 s; it
  ends early once the client hangs up), then answer 504; with ``perform=True`` the request is
  served after the hold (a slow venue that acted on it anyway).
* ``lose_answer``: serve the request (an order IS placed), then lose the answer: the
  connection is closed without a response (``lose_mode="close"``) or a 504 replaces it
  (``lose_mode="504"``). The client cannot tell whether the request took effect.
* ``drop_ws`` / ``stall_ws``: websocket faults. A websocket server calls
  ``await injector.ws_gate(path)`` before each message it sends: a ``drop_ws`` hit answers
  ``False`` (close the socket), a ``stall_ws`` hit holds the sender for ``duration_s``
  (default 5 s; later messages queue behind it). Call numbers of websocket rules count
  messages, not requests. ``await injector.close_websockets(glob)`` drops live sockets at
  once (sockets registered with ``injector.track_ws``).

Runtime control: ``FaultInjector.add(rule)``, ``remove(id)``, ``clear()``; over HTTP, once
``injector.install(app)`` has run: ``POST /_sandbox/faults`` (a rule JSON, or
``{"rules": [...]}``) answers the stored rules with their ids, ``DELETE /_sandbox/faults``
clears every rule, ``DELETE /_sandbox/faults/{id}`` one, ``GET /_sandbox/faults`` shows rules
and counts, ``POST /_sandbox/faults/drop_ws`` (``{"path": glob}``) drops live websockets.
Paths under ``/_sandbox/`` are never faulted.
"""

from __future__ import annotations

import asyncio
import json
import random
import tomllib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ADMIN_PREFIX = "/_sandbox/"
MAX_HOLD_S = 300.0
_HOLD_POLL_S = 0.05


class FaultKind(StrEnum):
    LATENCY = "latency"
    STATUS = "status"
    TIMEOUT = "timeout"
    LOSE_ANSWER = "lose_answer"
    DROP_WS = "drop_ws"
    STALL_WS = "stall_ws"

    @property
    def is_ws(self) -> bool:
        return self in (FaultKind.DROP_WS, FaultKind.STALL_WS)


_DEFAULT_DURATION_S = {
    FaultKind.LATENCY: 0.5,
    FaultKind.TIMEOUT: 30.0,
    FaultKind.STALL_WS: 5.0,
}


class When(BaseModel):
    """When a matching call is faulted; every condition given must hold, none given means always."""

    model_config = ConfigDict(extra="forbid")

    every: int | None = Field(default=None, ge=1, description="calls number N, 2N, 3N, ...")
    first: int | None = Field(default=None, ge=1, description="calls 1..N")
    calls: tuple[int, int] | None = Field(default=None, description="calls a <= n < b (1-based)")
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int = Field(default=0, description="seeds this rule's RNG, so a run is reproducible")

    @model_validator(mode="after")
    def _range(self) -> When:
        if self.calls is not None and not 1 <= self.calls[0] <= self.calls[1]:
            raise ValueError(f"calls must be [a, b) with 1 <= a <= b, got {list(self.calls)}")
        return self

    def hits(self, n: int, rng: random.Random) -> bool:
        """Is call number ``n`` (1-based) faulted? Draws from ``rng`` only when the rest hold."""
        if self.every is not None and n % self.every != 0:
            return False
        if self.first is not None and n > self.first:
            return False
        if self.calls is not None and not self.calls[0] <= n < self.calls[1]:
            return False
        return self.probability is None or rng.random() < self.probability


class FaultRule(BaseModel):
    """One scripted fault; see the module docstring for what each kind does."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="assigned by the injector when missing")
    path: str = Field(default="*", description="glob over the request path, e.g. /api/v3/order")
    method: str = Field(default="*", description="HTTP method or *; websocket rules ignore it")
    kind: FaultKind
    when: When = When()
    duration_s: float | None = Field(default=None, ge=0.0, le=MAX_HOLD_S)
    status: int = Field(default=503, ge=400, le=599)
    retry_after_s: float | None = Field(default=None, ge=0.0)
    body: Any = None
    perform: bool = Field(default=False, description="timeout: serve the request after the hold")
    lose_mode: Literal["close", "504"] = "close"

    @property
    def seconds(self) -> float:
        """The duration this rule uses: given, or the kind's default."""
        if self.duration_s is not None:
            return self.duration_s
        return _DEFAULT_DURATION_S.get(self.kind, 0.0)

    def matches(self, method: str, path: str) -> bool:
        if not fnmatchcase(path, self.path):
            return False
        return self.kind.is_ws or self.method == "*" or self.method.upper() == method.upper()


class FaultPlan(BaseModel):
    """The rules in force; loadable from JSON (``{"rules": [...]}``) or TOML (``[[rules]]``)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[FaultRule] = Field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> FaultPlan:
        return cls.model_validate(json.loads(text))

    @classmethod
    def from_toml(cls, text: str) -> FaultPlan:
        return cls.model_validate(tomllib.loads(text))

    @classmethod
    def from_file(cls, path: Path | str) -> FaultPlan:
        """``.toml`` files as TOML, anything else as JSON."""
        p = Path(path)
        text = p.read_text()
        return cls.from_toml(text) if p.suffix.lower() == ".toml" else cls.from_json(text)


class FaultStats:
    """How many faults were injected, by kind and by rule id; ``calls`` counts matching calls."""

    def __init__(self) -> None:
        self.injected: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def record(self, rule: FaultRule) -> None:
        self.injected[rule.kind.value] += 1
        self.by_rule[rule.id or "?"] += 1

    def count(self, kind: FaultKind | str) -> int:
        return self.injected[str(kind)]

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def reset(self) -> None:
        self.injected.clear()
        self.by_rule.clear()
        self.calls.clear()

    def as_dict(self) -> dict[str, Any]:
        return {
            "injected": dict(self.injected),
            "by_rule": dict(self.by_rule),
            "calls": dict(self.calls),
            "total": self.total,
        }


class FaultInjector:
    """A plan, its counters and RNGs; the one object an app and its tests share at runtime."""

    def __init__(self, plan: FaultPlan | None = None, stats: FaultStats | None = None) -> None:
        self.plan = plan if plan is not None else FaultPlan()
        self.stats = stats if stats is not None else FaultStats()
        self._rngs: dict[str, random.Random] = {}
        self._next_id = 0
        self._sockets: list[tuple[str, web.WebSocketResponse]] = []
        for rule in self.plan.rules:
            self._register(rule)

    # ------------------------------------------------------------------ rules

    def _register(self, rule: FaultRule) -> FaultRule:
        if rule.id is None:
            self._next_id += 1
            rule.id = f"r{self._next_id}"
            while any(r.id == rule.id and r is not rule for r in self.plan.rules):
                self._next_id += 1
                rule.id = f"r{self._next_id}"
        self._rngs[rule.id] = random.Random(rule.when.seed)
        return rule

    def add(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        """Put a rule in force (after those already there); returns it with its id."""
        parsed = rule if isinstance(rule, FaultRule) else FaultRule.model_validate(rule)
        parsed = parsed.model_copy()
        self.plan.rules.append(parsed)
        return self._register(parsed)

    def remove(self, rule_id: str) -> bool:
        before = len(self.plan.rules)
        self.plan.rules = [r for r in self.plan.rules if r.id != rule_id]
        self._rngs.pop(rule_id, None)
        return len(self.plan.rules) != before

    def clear(self) -> None:
        """Drop every rule; the injected counts stay (``stats.reset()`` clears them)."""
        self.plan.rules.clear()
        self._rngs.clear()

    @property
    def rules(self) -> list[FaultRule]:
        return list(self.plan.rules)

    def decide(self, method: str, path: str, *, ws: bool = False) -> FaultRule | None:
        """Count this call against every matching rule of its family; the first that hits wins."""
        if path.startswith(ADMIN_PREFIX):
            return None
        chosen: FaultRule | None = None
        for rule in list(self.plan.rules):
            if rule.kind.is_ws != ws or not rule.matches(method, path):
                continue
            rid = rule.id or ""
            self.stats.calls[rid] += 1
            rng = self._rngs.setdefault(rid, random.Random(rule.when.seed))
            if chosen is None and rule.when.hits(self.stats.calls[rid], rng):
                chosen = rule
        if chosen is not None:
            self.stats.record(chosen)
        return chosen

    # ------------------------------------------------------------------ http

    def middleware(self) -> Middleware:
        """The aiohttp middleware applying this injector's HTTP rules."""

        @web.middleware
        async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            rule = self.decide(request.method, request.path)
            if rule is None:
                return await handler(request)
            return await _apply(rule, request, handler)

        return faults

    def install(self, app: web.Application) -> None:
        """Add the middleware (outermost so far) and the ``/_sandbox/faults`` admin routes."""
        app.middlewares.insert(0, self.middleware())
        app.router.add_get("/_sandbox/faults", self._get)
        app.router.add_post("/_sandbox/faults", self._post)
        app.router.add_delete("/_sandbox/faults", self._delete_all)
        app.router.add_post("/_sandbox/faults/drop_ws", self._drop_ws)
        app.router.add_delete("/_sandbox/faults/{rule_id}", self._delete_one)

    def describe(self) -> dict[str, Any]:
        return {"rules": [r.model_dump(mode="json") for r in self.plan.rules], **self.stats.as_dict()}

    async def _get(self, _request: web.Request) -> web.Response:
        return web.json_response(self.describe())

    async def _post(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            raw = payload["rules"] if isinstance(payload, dict) and "rules" in payload else [payload]
            if not isinstance(raw, list):
                raise ValueError("rules must be a list")
            parsed = [FaultRule.model_validate(r) for r in raw]
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            return web.json_response({"error": f"bad fault rule: {exc}"}, status=400)
        added = [self.add(r) for r in parsed]
        return web.json_response({"rules": [r.model_dump(mode="json") for r in added]})

    async def _delete_all(self, _request: web.Request) -> web.Response:
        removed = len(self.plan.rules)
        self.clear()
        return web.json_response({"removed": removed})

    async def _delete_one(self, request: web.Request) -> web.Response:
        rule_id = request.match_info["rule_id"]
        if not self.remove(rule_id):
            return web.json_response({"error": f"no rule {rule_id!r}"}, status=404)
        return web.json_response({"removed": 1})

    async def _drop_ws(self, request: web.Request) -> web.Response:
        glob = "*"
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"error": "body must be JSON"}, status=400)
            if isinstance(body, dict) and isinstance(body.get("path"), str):
                glob = body["path"]
        return web.json_response({"closed": await self.close_websockets(glob)})

    # ------------------------------------------------------------------ websockets

    async def ws_gate(self, path: str) -> bool:
        """Call before sending a websocket message: ``False`` means close the socket now."""
        rule = self.decide("WS", path, ws=True)
        if rule is None:
            return True
        if rule.kind is FaultKind.DROP_WS:
            return False
        await asyncio.sleep(rule.seconds)
        return True

    @contextmanager
    def track_ws(self, path: str, ws: web.WebSocketResponse) -> Iterator[None]:
        """Register a live socket so ``close_websockets`` can drop it."""
        entry = (path, ws)
        self._sockets.append(entry)
        try:
            yield
        finally:
            self._sockets = [e for e in self._sockets if e is not entry]

    async def close_websockets(self, glob: str = "*") -> int:
        """Close every tracked socket whose path matches ``glob``; counted as ``drop_ws`` faults."""
        victims = [(p, ws) for p, ws in self._sockets if fnmatchcase(p, glob) and not ws.closed]
        for _path, ws in victims:
            self.stats.injected[FaultKind.DROP_WS.value] += 1
            self.stats.by_rule["close_websockets"] += 1
            await ws.close(code=1001, message=b"sandbox: injected drop")
        return len(victims)


def fault_middleware(plan: FaultPlan, stats: FaultStats | None = None) -> Middleware:
    """Middleware applying ``plan`` (later edits to its rules take effect), counting into ``stats``."""
    return FaultInjector(plan, stats).middleware()


async def _hold(request: web.Request, seconds: float) -> None:
    """Wait ``seconds`` (bounded), ending early when the client has gone away."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(seconds, MAX_HOLD_S)
    while True:
        left = deadline - loop.time()
        transport = request.transport
        if left <= 0 or transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(_HOLD_POLL_S, left))


def _status_response(rule: FaultRule) -> web.Response:
    headers: dict[str, str] = {}
    if rule.retry_after_s is not None:
        seconds = rule.retry_after_s
        headers["Retry-After"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
    body = rule.body if rule.body is not None else {"error": "injected fault", "status": rule.status}
    if isinstance(body, str):
        return web.Response(status=rule.status, text=body, headers=headers)
    return web.json_response(body, status=rule.status, headers=headers)


async def _apply(rule: FaultRule, request: web.Request, handler: Handler) -> web.StreamResponse:
    if rule.kind is FaultKind.LATENCY:
        await asyncio.sleep(rule.seconds)
        return await handler(request)
    if rule.kind is FaultKind.STATUS:
        return _status_response(rule)
    if rule.kind is FaultKind.TIMEOUT:
        await _hold(request, rule.seconds)
        if rule.perform:
            return await handler(request)
        return web.json_response({"error": "injected timeout"}, status=504)
    # LOSE_ANSWER: the request takes effect, its answer does not arrive
    await handler(request)
    if rule.lose_mode == "504":
        return web.json_response({"error": "injected lost answer"}, status=504)
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError  # aiohttp drops a cancelled handler without writing a response
