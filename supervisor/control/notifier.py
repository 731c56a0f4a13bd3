"""Alerts that reach a person when nobody runs Alertmanager: a webhook POST and/or an e-mail.

The supervisor calls :meth:`Notifier.notify` (or :meth:`Notifier.notify_soon` from its control
loop) with an :class:`Alert` when trading halts, an actor spends its restart budget, an orphaned
order or a stuck position is found, or the day's loss reaches its limit; a separate watcher uses
:class:`SilenceWatch` (a dead man's switch) to say that the system went quiet altogether.

Decisions, so nobody has to guess:

* **Never raises into the caller.** Every channel failure (connection refused, timeout, HTTP
  status outside 2xx, SMTP error) is logged and counted in :attr:`Notifier.stats`; only
  cancellation escapes. Alerting must not be what takes the supervisor down.
* **Retries.** A failed attempt is retried ``webhook_retries`` times with exponential backoff
  (``retry_backoff_s``, doubled per retry) when it may succeed later: no answer, a timeout, HTTP
  5xx or 429, SMTP 4xx or a dropped connection. A permanent refusal (HTTP 4xx, SMTP 5xx, bad
  login, every recipient refused) is not retried. The same retry count applies to SMTP.
* **De-duplication.** One alert per ``(kind, key)`` per ``cooldown_s`` (``key`` names what the
  alert is about: an actor, an order, a position), so a flapping condition does not spam. The
  cooldown starts when a send begins (a second alert while the first is in flight is suppressed
  too) and is released again if no channel delivered, so the next occurrence tries again.
* **Payload.** The webhook gets one JSON object: ``source``, ``kind``, ``severity``, ``summary``,
  ``key``, ``details``, ``ts_ms``, ``time`` (ISO-8601 UTC) and ``text`` (a one-line rendering,
  what Slack- or Mattermost-style incoming webhooks display). The mail has the same one-line
  subject and a plain-text body listing the details.
* **SMTP.** stdlib ``smtplib`` in a worker thread (no extra dependency): plain SMTP to
  ``smtp_host:smtp_port``, then STARTTLS (certificate verified against the system CAs) if
  ``smtp_starttls``, then LOGIN if ``smtp_user`` is set, with ``smtp_password`` taken from the
  environment by the config loader. The password is a ``SecretStr`` until the moment it is handed
  to ``SMTP.login``: it is never logged, and neither the notifier's nor the config's repr shows it.
* **Webhook URLs often carry a token** (Slack, Mattermost): logs show only scheme, host and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import smtplib
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.models import NotifyConfig

if TYPE_CHECKING:  # imported where a webhook is sent: every process that loads the supervisor's
    import aiohttp  # class (any handle to it: every actor) would otherwise pay ~80 ms for it

log = logging.getLogger(__name__)

WEBHOOK = "webhook"
SMTP = "smtp"
SOURCE = "raytrader"
_SUBJECT_MAX = 200


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class AlertKind(StrEnum):
    HALT = "halt"
    RESTART_BUDGET_SPENT = "restart_budget_spent"
    ORPHAN_FOUND = "orphan_found"
    STUCK_POSITION = "stuck_position"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    SYSTEM_SILENT = "system_silent"
    NO_ACTIVITY = "no_activity"
    UNREADABLE_POSITION = "unreadable_position"
    TEST = "test"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


DEFAULT_SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.HALT: Severity.CRITICAL,
    AlertKind.RESTART_BUDGET_SPENT: Severity.CRITICAL,
    AlertKind.ORPHAN_FOUND: Severity.WARNING,
    AlertKind.STUCK_POSITION: Severity.WARNING,
    AlertKind.DAILY_LOSS_LIMIT: Severity.CRITICAL,
    AlertKind.SYSTEM_SILENT: Severity.CRITICAL,
    AlertKind.NO_ACTIVITY: Severity.WARNING,
    AlertKind.TEST: Severity.INFO,
}


class Alert(BaseModel):
    """One thing a person should know about; ``severity`` defaults by kind (see DEFAULT_SEVERITY)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AlertKind
    summary: str = Field(min_length=1, description="one line, what happened")
    key: str = Field(default="", description="what it is about within its kind; de-duplication key")
    severity: Severity = Severity.WARNING
    details: dict[str, Any] = Field(default_factory=dict, description="JSON-able facts, shown as given")
    ts_ms: int = Field(default_factory=wall_ms, description="when it was raised, ms since the epoch")

    @model_validator(mode="before")
    @classmethod
    def _severity_by_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("severity") is None and "kind" in data:
            try:
                kind = AlertKind(data["kind"])
            except ValueError:
                return data  # the kind's own validation reports it
            return {**data, "severity": DEFAULT_SEVERITY[kind]}
        return data

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.kind.value, self.key)

    @property
    def time_iso(self) -> str:
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC).isoformat(timespec="seconds")

    @property
    def subject(self) -> str:
        """``[raytrader CRITICAL] halt: restart budget spent by feed:x`` on one line."""
        text = f"[{SOURCE} {self.severity.value.upper()}] {self.kind.value}: {self.summary}"
        text = " ".join(text.split())  # no CR/LF: a header must stay one line
        return text if len(text) <= _SUBJECT_MAX else text[: _SUBJECT_MAX - 3] + "..."

    def body(self) -> str:
        """Plain text for a mail: the summary, then every field and detail, one per line."""
        lines = [
            self.summary,
            "",
            f"kind: {self.kind.value}",
            f"severity: {self.severity.value}",
            f"key: {self.key or '-'}",
            f"time: {self.time_iso} ({self.ts_ms} ms)",
        ]
        if self.details:
            lines += ["", "details:"]
            lines += [f"  {k}: {_json_text(v)}" for k, v in sorted(self.details.items())]
        return "\n".join(lines) + "\n"

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON object."""
        return {
            "source": SOURCE,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "key": self.key,
            "details": json.loads(json.dumps(self.details, default=str)),
            "ts_ms": self.ts_ms,
            "time": self.time_iso,
            "text": self.subject,
        }


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


# --------------------------------------------------------------------------- the alerts the supervisor raises


def halt_alert(reason: str, **details: Any) -> Alert:
    return Alert(kind=AlertKind.HALT, summary=f"entries halted: {reason}", key=reason, details=details)


def restart_budget_alert(actor: str, kind: str, restarts: int, window_s: float) -> Alert:
    return Alert(
        kind=AlertKind.RESTART_BUDGET_SPENT,
        summary=f"{actor} spent its restart budget ({restarts} restarts in {window_s:.0f}s): entries halted",
        key=actor,
        details={"actor": actor, "actor_kind": kind, "restarts": restarts, "window_s": window_s},
    )


def orphan_alert(client_id: str, market: str, owner: str | None, *, cancelled: bool = True) -> Alert:
    what = "cancelled" if cancelled else "found"
    return Alert(
        kind=AlertKind.ORPHAN_FOUND,
        summary=f"orphaned order {client_id} on {market} (owner {owner or 'none'}) {what}",
        key=client_id,
        details={"client_id": client_id, "market": market, "owner": owner, "cancelled": cancelled},
    )


def unreadable_position_alert(position: str, reason: str) -> Alert:
    return Alert(
        kind=AlertKind.UNREADABLE_POSITION,
        summary=f"position {position}: record does not decode ({reason}); not restored, orders kept",
        key=position,
        severity=Severity.CRITICAL,
        details={"position": position, "reason": reason},
    )


def stuck_alert(position: str, cause: str, *, escalated: bool = False, **details: Any) -> Alert:
    return Alert(
        kind=AlertKind.STUCK_POSITION,
        summary=f"position {position} stuck ({cause})" + (": escalated" if escalated else ": re-driven"),
        key=f"{position}:{cause}" + (":escalated" if escalated else ""),  # not muted by the re-drive alert
        severity=Severity.CRITICAL if escalated else Severity.WARNING,
        details={"position": position, "cause": cause, "escalated": escalated, **details},
    )


def daily_loss_alert(day: str, loss: float, start_equity: float, limit: float, *, halted: bool) -> Alert:
    """``loss`` is positive money lost since the UTC day began; ``limit`` a fraction of ``start_equity``."""
    share = loss / start_equity if start_equity > 0 else 0.0
    return Alert(
        kind=AlertKind.DAILY_LOSS_LIMIT,
        summary=f"daily loss {loss:.2f} = {share:.1%} of {start_equity:.2f} reached the {limit:.1%} limit"
        + (": entries halted until the next UTC day" if halted else ""),
        key=day,
        details={
            "day": day,
            "loss": loss,
            "start_equity": start_equity,
            "loss_fraction": share,
            "limit": limit,
            "halted": halted,
        },
    )


def no_activity_alert(silent_s: float, limit_s: float, since_ms: int, *, resumed: bool = False) -> Alert:
    """Nothing traded and no signal evaluated for ``silent_s`` (limit ``limit_s``) since ``since_ms``
    (wall ms); ``resumed``: the info that activity came back. One silence is one key, so the
    cooldown never hides the next silence."""
    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC).isoformat(timespec="seconds")
    summary = (
        f"activity resumed after {silent_s:.0f}s without a trade or an evaluated signal"
        if resumed
        else f"no trade and no evaluated signal for {silent_s:.0f}s (limit {limit_s:.0f}s), since {since}"
    )
    return Alert(
        kind=AlertKind.NO_ACTIVITY,
        summary=summary,
        key=f"{since_ms}:resumed" if resumed else str(since_ms),
        severity=Severity.INFO if resumed else None,
        details={"silent_s": round(silent_s, 3), "limit_s": limit_s, "since": since, "resumed": resumed},
    )


# --------------------------------------------------------------------------- the notifier


@dataclass
class NotifierStats:
    """What the notifier did, by channel (``webhook``, ``smtp``)."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    """Alerts a channel did not deliver after every retry."""
    failed_attempts: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0
    """Alerts dropped by the (kind, key) cooldown."""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one :meth:`Notifier.notify`."""

    alert: Alert
    sent: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    suppressed: bool = False

    @property
    def delivered(self) -> bool:
        return bool(self.sent)


class _PermanentError(Exception):
    """A refusal that a retry will not change."""


ResultHook = Callable[[Alert, str, bool], None]
"""``on_result(alert, channel, delivered)``: e.g. to count a Prometheus metric."""


class Notifier:
    """Sends alerts to the configured channels; see the module docstring for every rule it follows."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        session: aiohttp.ClientSession | None = None,
        smtp_ssl_context: ssl.SSLContext | None = None,
        on_result: ResultHook | None = None,
    ) -> None:
        self.config = config
        self.stats = NotifierStats()
        self._clock = clock
        self._sleep = sleep
        self._session = session
        self._own_session = session is None
        self._ssl_context = smtp_ssl_context
        self._on_result = on_result
        self._last_sent: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[Delivery]] = set()

    def __repr__(self) -> str:
        return f"Notifier(channels={list(self.channels)}, cooldown_s={self.config.cooldown_s})"

    @property
    def channels(self) -> tuple[str, ...]:
        """The configured channels (none: every notify is a no-op)."""
        out: list[str] = []
        if self.config.webhook_url:
            out.append(WEBHOOK)
        if self.config.smtp_host and self.config.smtp_to:
            out.append(SMTP)
        return tuple(out)

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    # ------------------------------------------------------------------ sending

    async def notify(self, alert: Alert) -> Delivery:
        """Send `alert` to every channel unless its (kind, key) is cooling down; never raises."""
        channels = self.channels
        if not channels:
            return Delivery(alert)
        now = self._clock()
        slot = alert.dedup_key
        previous = self._last_sent.get(slot)
        if previous is not None and now - previous < self.config.cooldown_s:
            self.stats.suppressed += 1
            log.info(
                "alert %s/%s suppressed (cooldown %.0fs)", alert.kind.value, alert.key, self.config.cooldown_s
            )
            return Delivery(alert, suppressed=True)
        self._last_sent[slot] = now
        senders = {WEBHOOK: self._webhook, SMTP: self._smtp}
        results = await asyncio.gather(*(self._guarded(c, senders[c], alert) for c in channels))
        sent = tuple(c for c, ok in zip(channels, results, strict=True) if ok)
        failed = tuple(c for c, ok in zip(channels, results, strict=True) if not ok)
        if not sent:  # release the slot: the next occurrence tries again
            if previous is None:
                self._last_sent.pop(slot, None)
            else:
                self._last_sent[slot] = previous
        if sent:
            log.warning("alert %s sent via %s: %s", alert.kind.value, ", ".join(sent), alert.summary)
        return Delivery(alert, sent=sent, failed=failed)

    def notify_soon(self, alert: Alert) -> asyncio.Task[Delivery]:
        """Send in the background (the caller's loop goes on); the task never fails. See :meth:`drain`."""
        task = asyncio.get_running_loop().create_task(self.notify(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for every background send started by :meth:`notify_soon`."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _guarded(self, channel: str, send: Callable[[Alert], Awaitable[bool]], alert: Alert) -> bool:
        try:
            ok = await send(alert)
        except Exception:  # a bug in a channel must not reach the supervisor
            log.exception("alert %s: %s channel failed unexpectedly", alert.kind.value, channel)
            ok = False
        if ok:
            self.stats.sent[channel] += 1
        else:
            self.stats.failed[channel] += 1
        if self._on_result is not None:
            try:
                self._on_result(alert, channel, ok)
            except Exception:
                log.exception("alert result hook failed")
        return ok

    async def _with_retries(self, channel: str, alert: Alert, attempt: Callable[[], Awaitable[None]]) -> bool:
        """Run `attempt` until it succeeds, a permanent refusal, or the retries are spent."""
        tries = self.config.webhook_retries + 1
        for i in range(tries):
            if i:
                await self._sleep(self.config.retry_backoff_s * 2 ** (i - 1))
            try:
                await attempt()
                return True
            except _PermanentError as exc:
                self.stats.failed_attempts[channel] += 1
                log.error("alert %s: %s refused it (%s); not retried", alert.kind.value, channel, exc)
                return False
            except Exception as exc:
                self.stats.failed_attempts[channel] += 1
                log.warning(
                    "alert %s: %s attempt %d/%d failed: %s", alert.kind.value, channel, i + 1, tries, exc
                )
        log.error(
            "alert %s: %s gave up after %d attempts: %s", alert.kind.value, channel, tries, alert.summary
        )
        return False

    # ------------------------------------------------------------------ webhook

    def _http(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _webhook(self, alert: Alert) -> bool:
        import aiohttp

        url = self.config.webhook_url
        assert url is not None
        body = json.dumps(alert.payload())
        timeout = aiohttp.ClientTimeout(total=self.config.webhook_timeout_s)
        shown = _redacted(url)

        async def post() -> None:
            try:
                async with self._http().post(
                    url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout
                ) as resp:
                    if 200 <= resp.status < 300:
                        return
                    message = f"{shown} answered HTTP {resp.status}"
                    if resp.status >= 500 or resp.status == 429:
                        raise ConnectionError(message)
                    raise _PermanentError(message)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ConnectionError(f"{shown}: {type(exc).__name__}: {exc}") from None

        return await self._with_retries(WEBHOOK, alert, post)

    # ------------------------------------------------------------------ mail

    def message(self, alert: Alert) -> EmailMessage:
        """The e-mail `alert` becomes."""
        c = self.config
        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = c.smtp_from
        msg["To"] = ", ".join(c.smtp_to)
        msg["Date"] = format_datetime(datetime.fromtimestamp(alert.ts_ms / 1000, tz=UTC))
        msg["Message-ID"] = make_msgid(domain=SOURCE)
        msg["X-Raytrader-Kind"] = alert.kind.value
        msg["X-Raytrader-Severity"] = alert.severity.value
        msg.set_content(alert.body())
        return msg

    async def _smtp(self, alert: Alert) -> bool:
        message = self.message(alert)

        async def send() -> None:
            await asyncio.to_thread(self._send_blocking, message)

        return await self._with_retries(SMTP, alert, send)

    def _send_blocking(self, message: EmailMessage) -> None:
        """One SMTP session (worker thread): connect, STARTTLS, LOGIN, send; errors classified."""
        c = self.config
        assert c.smtp_host is not None
        try:
            with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.smtp_timeout_s) as smtp:
                smtp.ehlo()
                if c.smtp_starttls:
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if c.smtp_user is not None:
                    password = c.smtp_password.get_secret_value() if c.smtp_password is not None else ""
                    smtp.login(c.smtp_user, password)
                refused = smtp.send_message(message)
                if refused:
                    log.warning("alert mail: recipients refused: %s", sorted(refused))
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as exc:
            raise _PermanentError(f"{type(exc).__name__}: {_smtp_reason(exc)}") from None
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise _PermanentError(f"{type(exc).__name__}") from None
        except smtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.smtp_code}: {_smtp_reason(exc)}"
            if 400 <= exc.smtp_code < 500:
                raise ConnectionError(reason) from None
            raise _PermanentError(reason) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, dropped, timed out, TLS failure
            raise ConnectionError(f"{c.smtp_host}:{c.smtp_port}: {type(exc).__name__}: {exc}") from None


def _smtp_reason(exc: Exception) -> str:
    raw = getattr(exc, "smtp_error", b"")
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:200]


def _redacted(url: str) -> str:
    """scheme://host:port/... : webhook paths and queries often hold a token."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


# --------------------------------------------------------------------------- dead man's switch


class SilenceWatch:
    """Fires ``system_silent`` once when nothing has beaten for ``silent_after_s``; re-arms on a beat.

    The clock is injectable (monotonic seconds by default), so a test or a watcher process decides
    what a beat is: a supervisor heartbeat, a tick, a fresh ``/metrics`` scrape.
    """

    def __init__(
        self,
        silent_after_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = SOURCE,
        wall: Callable[[], int] = wall_ms,
    ) -> None:
        if silent_after_s <= 0:
            raise ValueError(f"silent_after_s must be positive, got {silent_after_s}")
        self.silent_after_s = silent_after_s
        self.name = name
        self._clock = clock
        self._wall = wall
        self._last = clock()
        self._fired = False
        self.beats = 0

    @property
    def silent_for(self) -> float:
        return max(0.0, self._clock() - self._last)

    @property
    def fired(self) -> bool:
        """True from the alert until the next beat."""
        return self._fired

    def beat(self) -> bool:
        """Record a sign of life; True if it ends a silence that had been alerted."""
        self.beats += 1
        self._last = self._clock()
        ended, self._fired = self._fired, False
        return ended

    def check(self) -> Alert | None:
        """The ``system_silent`` alert, exactly once per silence; None otherwise."""
        silent = self.silent_for
        if self._fired or silent < self.silent_after_s:
            return None
        self._fired = True
        return Alert(
            kind=AlertKind.SYSTEM_SILENT,
            summary=f"no heartbeat from {self.name} for {silent:.0f}s (limit {self.silent_after_s:.0f}s)",
            key=self.name,
            details={"silent_for_s": round(silent, 3), "silent_after_s": self.silent_after_s},
            ts_ms=self._wall(),
        )


async def watch_silence(
    watch: SilenceWatch,
    notifier: Notifier,
    probe: Callable[[], Awaitable[bool]],
    *,
    interval_s: float = 1.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rounds: int | None = None,
) -> list[Delivery]:
    """A watcher's loop: every `interval_s`, ``probe()`` (True = the system showed life) then check.

    A probe that raises counts as no sign of life. Runs until cancelled (or `rounds` rounds, for
    tests); returns the deliveries of the alerts it sent.
    """
    sent: list[Delivery] = []
    done = 0
    while rounds is None or done < rounds:
        alive = False
        with contextlib.suppress(Exception):
            alive = await probe()
        if alive:
            watch.beat()
        alert = watch.check()
        if alert is not None:
            sent.append(await notifier.notify(alert))
        done += 1
        if rounds is None or done < rounds:
            await sleep(interval_s)
    return sent


def alert_from_mapping(data: Mapping[str, Any]) -> Alert:
    """An :class:`Alert` from its webhook payload (what a receiver, or a test, gets back)."""
    fields = {k: data[k] for k in ("kind", "summary", "key", "severity", "details", "ts_ms") if k in data}
    return Alert.model_validate(fields)
