"""supervisor.control.notifier against a real local SMTP server (aiosmtpd) and a real aiohttp webhook
receiver.

Everything listens on 127.0.0.1, port 0. Retry backoff and cooldowns run on injected clocks and
sleeps, so nothing here waits on wall time beyond the network round trips themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP as SMTPServer  # noqa: N811
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from config.dump import dump_settings
from config.loader import ConfigError, load_settings
from config.models import NotifyConfig
from supervisor.control.notifier import (
    SMTP,
    WEBHOOK,
    Alert,
    AlertKind,
    Notifier,
    Severity,
    SilenceWatch,
    alert_from_mapping,
    daily_loss_alert,
    halt_alert,
    orphan_alert,
    restart_budget_alert,
    stuck_alert,
    watch_silence,
)

PASSWORD = "s3cr3t-Pa55word-do-not-log"
TOKEN = "T0KEN-in-the-webhook-path"


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class Sleeps:
    """An injected ``sleep`` that records the delays and advances a clock instead of waiting."""

    clock: FakeClock | None = None
    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.clock is not None:
            self.clock.now += delay


# --------------------------------------------------------------------------- local SMTP server


class MailBox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self) -> list[email.message.EmailMessage]:
        out = []
        for env in self.envelopes:
            raw = env.content if isinstance(env.content, bytes) else str(env.content).encode()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, email.message.EmailMessage)
            out.append(msg)
        return out


@dataclass
class SmtpServer:
    box: MailBox
    port: int


StartSmtp = Callable[..., Awaitable[SmtpServer]]


@pytest.fixture
async def start_smtp() -> AsyncIterator[StartSmtp]:
    servers: list[asyncio.Server] = []

    async def start(
        *, tls: ssl.SSLContext | None = None, user: str | None = None, password: str | None = None
    ) -> SmtpServer:
        box = MailBox()

        def authenticate(
            server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            assert isinstance(data, LoginPassword)
            login, secret = data.login.decode(), data.password.decode()
            box.logins.append((login, secret))
            return AuthResult(success=login == user and secret == password, handled=False)

        def factory() -> SMTPServer:
            return SMTPServer(
                box,
                hostname="mail.test",
                tls_context=tls,
                require_starttls=tls is not None,
                auth_require_tls=tls is not None,
                authenticator=authenticate if user is not None else None,
                auth_required=user is not None,
            )

        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        servers.append(server)
        return SmtpServer(box, server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) TLS contexts around a fresh certificate for 127.0.0.1 that the client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "raytrader test mail")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


# --------------------------------------------------------------------------- local webhook receiver


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Statuses to answer, in order; 200 once they run out."""
    delay_s: float = 0.0
    hits: int = 0


StartReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def start_receiver() -> AsyncIterator[StartReceiver]:
    runners: list[web.AppRunner] = []

    async def start(statuses: list[int] | None = None, delay_s: float = 0.0) -> Receiver:
        receiver = Receiver(url="", statuses=list(statuses or []), delay_s=delay_s)

        async def hook(request: web.Request) -> web.Response:
            receiver.hits += 1
            if receiver.delay_s:
                await asyncio.sleep(receiver.delay_s)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            if status == 200:
                receiver.bodies.append(await request.json())
            return web.json_response({"ok": status == 200}, status=status)

        app = web.Application()
        app.router.add_post("/hook/{token}", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        receiver.url = f"http://127.0.0.1:{port}/hook/{TOKEN}"
        return receiver

    yield start
    for runner in runners:
        await runner.cleanup()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def notifier(config: NotifyConfig, **kw: Any) -> Notifier:
    return Notifier(config, sleep=kw.pop("sleep", Sleeps()), **kw)


def sample() -> Alert:
    return restart_budget_alert("feed:binance-BTC-USDT", "feed", restarts=11, window_s=3600)


# --------------------------------------------------------------------------- mail


async def test_mail_reaches_local_smtp_server_with_subject_and_details(start_smtp: StartSmtp) -> None:
    server = await start_smtp()
    config = NotifyConfig(
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_from="bot@raytrader.test",
        smtp_to=["ops@raytrader.test", "oncall@raytrader.test"],
    )
    n = notifier(config)
    alert = sample()
    delivery = await n.notify(alert)
    await n.close()

    assert delivery.sent == (SMTP,)
    assert n.stats.sent[SMTP] == 1
    (envelope,) = server.box.envelopes
    assert envelope.mail_from == "bot@raytrader.test"
    assert envelope.rcpt_tos == ["ops@raytrader.test", "oncall@raytrader.test"]
    (msg,) = server.box.messages()
    assert msg["Subject"] == (
        "[raytrader CRITICAL] restart_budget_spent: feed:binance-BTC-USDT spent its restart budget "
        "(11 restarts in 3600s): entries halted"
    )
    assert msg["X-Raytrader-Kind"] == "restart_budget_spent"
    body = msg.get_content()
    assert "severity: critical" in body
    assert "key: feed:binance-BTC-USDT" in body
    assert "  restarts: 11" in body
    assert "  actor_kind: feed" in body
    assert "  window_s: 3600" in body


async def test_starttls_login_with_env_password_never_logged_or_shown(
    start_smtp: StartSmtp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server_tls, client_tls = self_signed(tmp_path)
    server = await start_smtp(tls=server_tls, user="alerts", password=PASSWORD)
    settings = load_settings(
        env={
            "RAYTRADER_NOTIFY__SMTP_HOST": "127.0.0.1",
            "RAYTRADER_NOTIFY__SMTP_PORT": str(server.port),
            "RAYTRADER_NOTIFY__SMTP_TO": '["ops@raytrader.test"]',
            "RAYTRADER_NOTIFY__SMTP_USER": "alerts",
            "RAYTRADER_NOTIFY__SMTP_STARTTLS": "true",
            "RAYTRADER_NOTIFY__SMTP_PASSWORD": PASSWORD,
        }
    )
    config = settings.notify
    assert config.smtp_password is not None
    assert config.smtp_password.get_secret_value() == PASSWORD
    n = notifier(config, smtp_ssl_context=client_tls)
    delivery = await n.notify(halt_alert("kill switch", by="operator"))
    assert delivery.sent == (SMTP,)
    assert server.box.logins == [("alerts", PASSWORD)]
    (msg,) = server.box.messages()
    assert "entries halted: kill switch" in msg["Subject"]

    # a wrong password: refused, not retried, counted, and still never shown
    wrong = config.model_copy(update={"smtp_password": SecretStr(PASSWORD + "-wrong")})
    bad = notifier(wrong, smtp_ssl_context=client_tls)
    refused = await bad.notify(halt_alert("kill switch"))
    assert refused.failed == (SMTP,)
    assert bad.stats.failed[SMTP] == 1
    assert bad.stats.failed_attempts[SMTP] == 1  # a bad login is permanent
    assert "SMTPAuthenticationError" in caplog.text

    shown = [
        caplog.text,
        repr(n),
        repr(bad),
        repr(config),
        str(config),
        repr(settings),
        dump_settings(settings),
        dump_settings(settings, fmt="json"),
        config.model_dump_json(),
    ]
    for text in shown:
        assert PASSWORD not in text
    assert "# notify.smtp_password = set" in dump_settings(settings)


async def test_starttls_refused_by_untrusted_certificate_is_logged_not_raised(
    start_smtp: StartSmtp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server_tls, _client = self_signed(tmp_path)
    server = await start_smtp(tls=server_tls)
    config = NotifyConfig(
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_to=["ops@x.test"],
        smtp_starttls=True,
        webhook_retries=1,
    )
    n = notifier(config)  # system CAs only: the self-signed certificate is not trusted
    delivery = await n.notify(sample())
    assert delivery.failed == (SMTP,)
    assert n.stats.failed_attempts[SMTP] == 2
    assert server.box.envelopes == []
    assert "gave up after 2 attempts" in caplog.text


async def test_smtp_connection_refused_retried_logged_counted(caplog: pytest.LogCaptureFixture) -> None:
    sleeps = Sleeps()
    config = NotifyConfig(
        smtp_host="127.0.0.1", smtp_port=closed_port(), smtp_to=["ops@x.test"], webhook_retries=2
    )
    n = notifier(config, sleep=sleeps)
    delivery = await n.notify(sample())
    assert delivery.failed == (SMTP,)
    assert not delivery.delivered
    assert n.stats.failed_attempts[SMTP] == 3
    assert sleeps.delays == [0.5, 1.0]
    assert "ConnectionRefusedError" in caplog.text


# --------------------------------------------------------------------------- webhook


async def test_webhook_receiver_gets_the_alert_as_json(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    n = notifier(NotifyConfig(webhook_url=receiver.url))
    alert = orphan_alert("cid-1", "binance:BTC/USDT", "position:p1")
    delivery = await n.notify(alert)
    await n.close()
    assert delivery.sent == (WEBHOOK,)
    (body,) = receiver.bodies
    assert body["source"] == "raytrader"
    assert body["kind"] == "orphan_found"
    assert body["severity"] == "warning"
    assert body["key"] == "cid-1"
    assert body["details"] == {
        "client_id": "cid-1",
        "market": "binance:BTC/USDT",
        "owner": "position:p1",
        "cancelled": True,
    }
    assert body["text"].startswith("[raytrader WARNING] orphan_found: orphaned order cid-1")
    assert body["time"].endswith("+00:00")
    assert alert_from_mapping(body) == alert


async def test_both_channels_get_every_alert(start_receiver: StartReceiver, start_smtp: StartSmtp) -> None:
    receiver, server = await start_receiver(), await start_smtp()
    config = NotifyConfig(
        webhook_url=receiver.url, smtp_host="127.0.0.1", smtp_port=server.port, smtp_to=["a@x.test"]
    )
    n = notifier(config)
    delivery = await n.notify(
        stuck_alert("position:p9", "transient_timeout", escalated=True, status="closing")
    )
    await n.close()
    assert set(delivery.sent) == {WEBHOOK, SMTP}
    assert receiver.bodies[0]["severity"] == "critical"
    assert receiver.bodies[0]["details"]["status"] == "closing"
    assert "position position:p9 stuck (transient_timeout): escalated" in server.box.messages()[0]["Subject"]
    assert receiver.bodies[0]["key"] == "position:p9:transient_timeout:escalated"


async def test_webhook_5xx_retried_with_backoff_then_delivered(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver(statuses=[500, 503])
    sleeps = Sleeps()
    n = notifier(NotifyConfig(webhook_url=receiver.url, retry_backoff_s=0.25), sleep=sleeps)
    delivery = await n.notify(sample())
    await n.close()
    assert delivery.sent == (WEBHOOK,)
    assert receiver.hits == 3
    assert sleeps.delays == [0.25, 0.5]
    assert n.stats.failed_attempts[WEBHOOK] == 2
    assert n.stats.sent[WEBHOOK] == 1


async def test_failing_webhook_500_logged_counted_never_raises(
    start_receiver: StartReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = await start_receiver(statuses=[500] * 10)
    results: list[tuple[str, str, bool]] = []
    n = notifier(
        NotifyConfig(webhook_url=receiver.url, webhook_retries=3),
        on_result=lambda a, channel, ok: results.append((a.kind.value, channel, ok)),
    )
    delivery = await n.notify(sample())
    await n.close()
    assert delivery.failed == (WEBHOOK,)
    assert receiver.hits == 4
    assert n.stats.failed[WEBHOOK] == 1
    assert n.stats.failed_attempts[WEBHOOK] == 4
    assert results == [("restart_budget_spent", WEBHOOK, False)]
    assert "answered HTTP 500" in caplog.text
    assert "gave up after 4 attempts" in caplog.text
    assert TOKEN not in caplog.text  # the webhook path (a token) is never logged


async def test_webhook_4xx_is_permanent_not_retried(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver(statuses=[404])
    n = notifier(NotifyConfig(webhook_url=receiver.url))
    delivery = await n.notify(sample())
    await n.close()
    assert delivery.failed == (WEBHOOK,)
    assert receiver.hits == 1


async def test_webhook_connection_refused_logged_counted_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook/{TOKEN}"
    sleeps = Sleeps()
    n = notifier(NotifyConfig(webhook_url=url, webhook_retries=2), sleep=sleeps)
    delivery = await n.notify(sample())
    await n.close()
    assert delivery.failed == (WEBHOOK,)
    assert n.stats.failed_attempts[WEBHOOK] == 3
    assert sleeps.delays == [0.5, 1.0]
    assert "ClientConnectorError" in caplog.text
    assert TOKEN not in caplog.text


async def test_webhook_timeout_counts_as_failed_attempt(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver(delay_s=0.5)
    n = notifier(NotifyConfig(webhook_url=receiver.url, webhook_timeout_s=0.1, webhook_retries=0))
    delivery = await n.notify(sample())
    await n.close()
    assert delivery.failed == (WEBHOOK,)
    assert n.stats.failed_attempts[WEBHOOK] == 1


async def test_one_channel_failing_does_not_stop_the_other(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    config = NotifyConfig(
        webhook_url=receiver.url, smtp_host="127.0.0.1", smtp_port=closed_port(), smtp_to=["a@x.test"]
    )
    n = notifier(config)
    delivery = await n.notify(sample())
    await n.close()
    assert delivery.sent == (WEBHOOK,)
    assert delivery.failed == (SMTP,)
    assert len(receiver.bodies) == 1


# --------------------------------------------------------------------------- de-duplication


async def test_cooldown_dedups_per_kind_and_key_then_expires(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    clock = FakeClock()
    n = notifier(NotifyConfig(webhook_url=receiver.url, cooldown_s=300), clock=clock)
    first = await n.notify(orphan_alert("cid-1", "m", None))
    again = await n.notify(orphan_alert("cid-1", "m", None))
    other_key = await n.notify(orphan_alert("cid-2", "m", None))
    other_kind = await n.notify(Alert(kind=AlertKind.STUCK_POSITION, summary="x", key="cid-1"))
    clock.now += 299.9
    still = await n.notify(orphan_alert("cid-1", "m", None))
    clock.now += 0.1
    later = await n.notify(orphan_alert("cid-1", "m", None))
    await n.close()
    assert [d.delivered for d in (first, other_key, other_kind, later)] == [True] * 4
    assert [d.suppressed for d in (again, still)] == [True, True]
    assert (again.sent, again.failed) == ((), ())
    assert n.stats.suppressed == 2
    assert [b["key"] for b in receiver.bodies] == ["cid-1", "cid-2", "cid-1", "cid-1"]


async def test_undelivered_alert_does_not_start_the_cooldown(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver(statuses=[500])
    n = notifier(NotifyConfig(webhook_url=receiver.url, webhook_retries=0, cooldown_s=300), clock=FakeClock())
    failed = await n.notify(sample())
    retried = await n.notify(sample())  # the condition is seen again: tried again, not suppressed
    suppressed = await n.notify(sample())
    await n.close()
    assert failed.failed == (WEBHOOK,)
    assert retried.sent == (WEBHOOK,)
    assert suppressed.suppressed


async def test_in_flight_alert_suppresses_its_duplicate(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver(delay_s=0.05)
    n = notifier(NotifyConfig(webhook_url=receiver.url), clock=FakeClock())
    one = n.notify_soon(sample())
    two = n.notify_soon(sample())
    await n.drain()
    await n.close()
    assert {one.result().delivered, two.result().suppressed} == {True}
    assert receiver.hits == 1


async def test_no_channel_configured_is_a_quiet_no_op() -> None:
    n = notifier(NotifyConfig())
    assert not n.enabled
    delivery = await n.notify(sample())
    assert delivery.sent == delivery.failed == ()
    assert not delivery.suppressed
    await n.close()


# --------------------------------------------------------------------------- dead man's switch


def test_silence_watch_fires_once_after_n_seconds_and_rearms_on_a_beat() -> None:
    clock = FakeClock()
    watch = SilenceWatch(60, clock=clock, name="supervisor", wall=lambda: 1_700_000_000_000)
    clock.now += 59.999
    assert watch.check() is None
    clock.now += 0.001
    alert = watch.check()
    assert alert is not None
    assert alert.kind is AlertKind.SYSTEM_SILENT
    assert alert.severity is Severity.CRITICAL
    assert alert.key == "supervisor"
    assert alert.details == {"silent_for_s": 60.0, "silent_after_s": 60}
    assert alert.ts_ms == 1_700_000_000_000
    assert watch.fired
    clock.now += 3600
    assert watch.check() is None  # once per silence
    assert watch.beat() is True  # the beat ends an alerted silence
    assert not watch.fired
    clock.now += 30
    assert watch.beat() is False
    clock.now += 59
    assert watch.check() is None
    clock.now += 1
    assert watch.check() is not None  # a new silence, a new alert


async def test_watch_silence_loop_alerts_once_when_probes_stop(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    clock = FakeClock()
    alive = [True] * 5 + [False] * 20
    calls = 0

    async def probe() -> bool:
        nonlocal calls
        calls += 1
        if calls == 7:
            raise ConnectionError("supervisor unreachable")  # a failed probe is no sign of life
        return alive[calls - 1]

    watch = SilenceWatch(10, clock=clock)
    n = notifier(NotifyConfig(webhook_url=receiver.url), clock=clock)
    sent = await watch_silence(watch, n, probe, interval_s=1.0, sleep=Sleeps(clock), rounds=25)
    await n.close()
    assert len(sent) == 1
    assert sent[0].delivered
    assert receiver.bodies[0]["kind"] == "system_silent"
    assert receiver.bodies[0]["details"]["silent_for_s"] == 10.0  # last beat at round 5, alert at 15


# --------------------------------------------------------------------------- alerts and config


def test_alert_severity_defaults_by_kind_and_subject_is_one_line() -> None:
    assert halt_alert("x").severity is Severity.CRITICAL
    assert orphan_alert("c", "m", None).severity is Severity.WARNING
    assert Alert(kind="test", summary="hi").severity is Severity.INFO
    assert Alert(kind="orphan_found", summary="s", severity="critical").severity is Severity.CRITICAL
    alert = Alert(kind=AlertKind.HALT, summary="line one\r\nSubject: injected")
    assert alert.subject == "[raytrader CRITICAL] halt: line one Subject: injected"
    with pytest.raises(ValidationError):
        Alert(kind="no_such_kind", summary="x")
    with pytest.raises(ValidationError):
        Alert(kind=AlertKind.HALT, summary="")
    loss = daily_loss_alert("2024-03-05", 600.0, 10_000.0, 0.05, halted=True)
    assert loss.key == "2024-03-05"
    assert loss.summary.startswith("daily loss 600.00 = 6.0% of 10000.00 reached the 5.0% limit")
    assert json.loads(json.dumps(loss.payload()))["details"]["halted"] is True


def test_notify_password_only_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "rt.toml"
    config.write_text(f'[notify]\nsmtp_password = "{PASSWORD}"\n')
    with pytest.raises(ConfigError) as in_file:
        load_settings(config, env={})
    assert "notify.smtp_password: secrets must not be written in a config file" in str(in_file.value)
    assert "RAYTRADER_NOTIFY__SMTP_PASSWORD" in str(in_file.value)
    with pytest.raises(ConfigError) as on_command_line:
        load_settings(env={}, overrides=[f"notify.smtp_password={PASSWORD}"])
    assert "secrets are not accepted on the command line" in str(on_command_line.value)
    with pytest.raises(ConfigError) as as_table:
        load_settings(env={}, overrides=[f"notify={{smtp_password = '{PASSWORD}'}}"])
    for err in (in_file.value, on_command_line.value, as_table.value):
        assert PASSWORD not in str(err)
    secret_file = tmp_path / "smtp-password"
    secret_file.write_text(f"{PASSWORD}\n")
    from_file = load_settings(env={"RAYTRADER_NOTIFY__SMTP_PASSWORD_FILE": str(secret_file)})
    assert from_file.notify.smtp_password is not None
    assert from_file.notify.smtp_password.get_secret_value() == PASSWORD
    numeric = load_settings(env={"RAYTRADER_NOTIFY__SMTP_PASSWORD": "12345"})  # never parsed as TOML
    assert numeric.notify.smtp_password is not None
    assert numeric.notify.smtp_password.get_secret_value() == "12345"
    assert load_settings(env={"RAYTRADER_NOTIFY__SMTP_PASSWORD": ""}).notify.smtp_password is None


def test_notify_config_mail_without_recipients_refused() -> None:
    with pytest.raises(ConfigError, match="smtp_to is empty"):
        load_settings(env={"RAYTRADER_NOTIFY__SMTP_HOST": "127.0.0.1"})
    with pytest.raises(ConfigError, match="webhook_url"):
        load_settings(env={}, overrides=["notify.webhook_url=ftp://example.test/hook"])
