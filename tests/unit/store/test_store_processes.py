"""State store across processes: a SIGKILLed writer keeps every commit, a read-only reader in
another process sees commits while the writer is open (real processes, never a fork)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.store.lmdb_store import SCHEMA_VERSION, StateStore
from tests.paths import REPO_ROOT

REPO = REPO_ROOT


def run_py(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python in a fresh process (never fork a process holding an open environment)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


_KILLED_WRITER = """
import os, signal, sys
from decimal import Decimal
from actors.domain.model import Order, Side
from actors.store.lmdb_store import StateStore

path, n, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = StateStore(path)
for i in range(n):
    order = Order(client_id=f"c-{i:04d}", market="m", side=Side.BUY, price=Decimal("0.51"), qty=Decimal("10"))
    if i == kill_at:
        with store.batch() as tx:  # die holding the write lock, mid-transaction
            tx.put("strategy", f"s-{i:04d}", {"i": i})
            tx.record_intent(order)
            os.kill(os.getpid(), signal.SIGKILL)
    with store.batch() as tx:
        tx.put("strategy", f"s-{i:04d}", {"i": i, "third": str(Decimal(i) / 3)})
        tx.record_intent(order)
"""


def test_sigkilled_writer_keeps_every_committed_record(tmp_path: Path) -> None:
    path = tmp_path / "state"
    proc = run_py(_KILLED_WRITER, str(path), "60", "37")
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    with StateStore(path) as store:  # the dead writer held LMDB's write lock: it must be recovered
        records = list(store.items("strategy"))
        assert [d["i"] for _, d in records] == list(range(37))
        assert all(Decimal(d["third"]) == Decimal(d["i"]) / 3 for _, d in records)
        assert [o.client_id for o in store.unanswered_intents()] == [f"c-{i:04d}" for i in range(37)]
        assert store.decode_errors == {}
        assert store.inspect(verify=True)["corrupt"] == []
        store.put("strategy", "after-crash", {"ok": True})
        assert store.get("strategy", "after-crash") == {"ok": True}


_READER = """
import json, sys
from actors.store.lmdb_store import StateStore, ReadOnlyStoreError

store = StateStore(sys.argv[1], map_size=1 << 20, readonly=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "read":
        out = {"keys": [k for k, _ in store.items("strategy")], "schema": store.inspect()["schema_version"]}
    elif cmd == "write":
        try:
            store.put("strategy", "from-reader", {})
            out = {"write": "allowed"}
        except ReadOnlyStoreError:
            out = {"write": "refused"}
    print(json.dumps(out), flush=True)
"""


class Reader:
    """A read-only store in another process, driven line by line over pipes (no sleeps)."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _READER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError(f"reader died: {self.proc.stderr.read()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def test_readonly_reader_in_other_process_sees_commits_while_writer_open(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with StateStore(path, map_size=1 << 20) as writer:
        writer.put("strategy", "a", {"n": 1})
        reader = Reader(path)
        try:
            assert reader.ask("read") == {"keys": ["a"], "schema": SCHEMA_VERSION}
            with writer.batch() as tx:
                tx.put("strategy", "b", {"n": 2})
                # the writer holds LMDB's write lock; the reader neither blocks nor sees "b"
                assert reader.ask("read")["keys"] == ["a"]
            assert reader.ask("read")["keys"] == ["a", "b"]
            assert reader.ask("write") == {"write": "refused"}

            # grow the file well past the reader's 1 MiB map: the reader adopts the new size
            blob = "x" * 100_000
            for i in range(40):
                writer.put("strategy", f"big-{i:02d}", {"blob": blob})
            assert writer.inspect()["env"]["map_size"] > 1 << 22
            assert len(reader.ask("read")["keys"]) == 42
        finally:
            reader.close()
        assert reader.proc.returncode == 0
