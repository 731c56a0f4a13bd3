"""`raytrader watch`: the dead man's switch outside Ray, on real LMDB files and a real webhook."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from actors.store.lmdb_store import StateStore
from config.models import NotifyConfig
from supervisor.control.notifier import Notifier, wall_ms
from supervisor.control.watchdog import (
    HEALTH_KEY,
    HEALTH_KIND,
    OK,
    SILENT,
    STOPPED,
    health_record,
    judge,
    look,
    watch,
)
from tests.paths import REPO_ROOT

NOW_MS = 1_700_000_000_000


def record(wall: int, **over: Any) -> dict[str, Any]:
    base = health_record(
        wall_ms=wall, last_activity_ms=wall - 5_000, no_activity=False, kill_switch_latched=False, ticks=7
    )
    return {**base, **over}


def write_health(state_dir: Path, data: dict[str, Any] | None) -> Path:
    """What the supervisor leaves behind: a real store (closed again, as another process would)."""
    store = state_dir / "store"
    with StateStore(store) as db:
        if data is not None:
            db.put(HEALTH_KIND, HEALTH_KEY, data)
    return store


class Hook:
    """A local webhook receiver: the alerts the watch sent, as JSON."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield receiver
    await runner.cleanup()


async def run_watch_cli(state_dir: Path, *args: str) -> tuple[int, str, str]:
    """`raytrader watch` in a fresh process where importing Ray fails: proof it needs none."""
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from supervisor.cli import main\n"
        f"sys.argv = ['raytrader', 'watch', '--state-dir', {str(state_dir)!r}, *{list(args)!r}]\n"
        "main()\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# --------------------------------------------------------------------------- the verdict


def test_judge_fresh_silent_stopped_and_missing() -> None:
    assert judge(record(NOW_MS - 2_000), NOW_MS, 60).state == OK
    silent = judge(record(NOW_MS - 61_000), NOW_MS, 60)
    assert silent.state == SILENT
    assert silent.age_s == 61.0
    assert "nothing written for 61s" in silent.line()
    stopped = judge(record(NOW_MS - 86_400_000, stopped=True), NOW_MS, 60)
    assert stopped.state == STOPPED  # a clean stop is silence by intent
    assert not stopped.silent
    assert judge(None, NOW_MS, 60).silent
    latched = judge(record(NOW_MS - 1_000, kill_switch_latched=True, no_activity=True), NOW_MS, 60)
    assert "kill switch LATCHED" in latched.line()
    assert "no-activity alert up" in latched.line()


def test_a_store_that_cannot_be_read_is_silent(tmp_path: Path) -> None:
    verdict = look(tmp_path / "nowhere" / "store", wall_ms(), 60)
    assert verdict.silent
    assert "cannot read the state store" in verdict.reason


# --------------------------------------------------------------------------- the command, outside Ray


async def test_watch_once_alerts_on_a_silent_store_and_exits_1(tmp_path: Path, hook: Hook) -> None:
    write_health(tmp_path, record(wall_ms() - 600_000))
    code, out, err = await run_watch_cli(
        tmp_path, "--once", "--silent-after", "60", "--set", f'notify.webhook_url="{hook.url}"'
    )
    assert code == 1, err[-2000:]
    assert out.startswith("silent: nothing written for 6")
    assert "raytrader is silent" in err  # the log line
    (alert,) = hook.bodies
    assert alert["kind"] == "system_silent"
    assert alert["severity"] == "critical"
    assert alert["details"]["store"] == str(tmp_path / "store")


async def test_watch_once_is_quiet_on_fresh_activity_and_after_a_clean_stop(
    tmp_path: Path, hook: Hook
) -> None:
    webhook = f'notify.webhook_url="{hook.url}"'
    write_health(tmp_path, record(wall_ms()))
    code, out, err = await run_watch_cli(tmp_path, "--once", "--silent-after", "60", "--set", webhook)
    assert code == 0, err[-2000:]
    assert out.startswith("ok: health record written")
    write_health(tmp_path, record(wall_ms() - 600_000, stopped=True))
    code, out, _err = await run_watch_cli(tmp_path, "--once", "--silent-after", "60", "--set", webhook)
    assert code == 0
    assert out.startswith("stopped: stopped cleanly")
    assert hook.bodies == []


async def test_watch_loop_alerts_once_per_silence_and_sees_writes_resume(tmp_path: Path, hook: Hook) -> None:
    """Stale, stale, fresh, stale: two silences, two alerts; the second look of a silence is quiet."""
    store = write_health(tmp_path, record(wall_ms() - 600_000))
    script = [None, record(wall_ms()), record(wall_ms() - 600_000)]
    # the supervisor's next writes, one per interval: none, then a fresh record, then silence again

    async def between_looks(_interval: float) -> None:
        data = script.pop(0)
        if data is not None:
            write_health(tmp_path, data)

    notifier = Notifier(NotifyConfig(webhook_url=hook.url, cooldown_s=0))
    try:
        last = await watch(store, notifier, silent_after_s=60, interval_s=0.0, sleep=between_looks, rounds=4)
    finally:
        await notifier.close()
    assert last.silent
    assert [b["kind"] for b in hook.bodies] == ["system_silent", "system_silent"]
