"""The LMDB memory map under the store: its size, and the transactions that pin it.

LMDB's map is fixed address space; a write that needs a page beyond it fails with
``MDB_MAP_FULL``. :class:`LmdbMap` grows it ahead of a write once more than ``GROW_AT`` of it is in
use, doubles it after a write found it full (the store then runs that write again), and adopts a
size another process (the writer) grew it to. The map can only be resized while no transaction
of this process is open, so every transaction begins and ends here, counted. For chaos runs,
:meth:`LmdbMap.fill` makes the map full on purpose.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import lmdb

from actors.store.records import GROW_AT, StoreError

log = logging.getLogger(__name__)


class LmdbMap:
    """The map of one open environment and this process's transactions on it; thread-safe."""

    def __init__(self, env: lmdb.Environment, path: Path) -> None:
        self._env = env
        self._path = path
        self._lock = threading.Lock()
        self._active = 0
        self._hold_growth = False
        """Set by :meth:`fill` (chaos): the next write finds the map full, none grows it before."""
        self.full_events = 0
        """Writes that found the map full (each grew it and ran again)."""

    def begin(self, *, write: bool) -> lmdb.Transaction[bytes]:
        """Begin a transaction, keeping count of this process's active ones (for map resizes)."""
        for _ in range(3):
            with self._lock:
                if write and self._active == 0:
                    self._maybe_grow_locked()
                self._active += 1
            try:
                return self._env.begin(write=write)
            except lmdb.MapResizedError:
                # another process grew the map beyond ours: adopt its size and retry
                self.release()
                with self._lock:
                    if self._active == 0:
                        self._env.set_mapsize(0)
                        log.debug("store %s: adopted the map grown by the writer", self._path)
            except BaseException:
                self.release()
                raise
        raise StoreError(f"{self._path}: could not adopt the grown map size")

    def release(self) -> None:
        """A transaction from :meth:`begin` ended (committed or aborted)."""
        with self._lock:
            self._active -= 1

    @property
    def held_full(self) -> bool:
        """A filled map no write has found full yet."""
        return self._hold_growth

    def found_full(self) -> None:
        """A write found the map full and wrote nothing: count it and grow the map for its next run."""
        self.full_events += 1
        self._hold_growth = False
        with self._lock:
            if self._active == 0:
                self._set_mapsize_locked(self._env.info()["map_size"] * 2)

    def fill(self) -> int:
        """Chaos only: make the map full, as an exhausted disk-backed map is. The map shrinks to
        the pages in use (LMDB will not go below them), the growth ahead of each write holds off,
        and the next write finds the map full: LMDB's own ``MDB_MAP_FULL`` if it needs a page
        beyond them, else at its commit (as if the free pages inside were used up too). That write
        is not done: the store must grow the map and run it again. Returns the new map size."""
        with self._lock:
            if self._active:
                raise StoreError(f"{self._path}: cannot resize the map while transactions are active")
            info = self._env.info()
            self._env.set_mapsize((info["last_pgno"] + 1) * self._env.stat()["psize"])
            self._hold_growth = True
            size = int(self._env.info()["map_size"])
        log.warning("store %s: map filled to %d bytes (injected)", self._path, size)
        return size

    def _maybe_grow_locked(self) -> None:
        if self._hold_growth:
            return
        info = self._env.info()
        used = (info["last_pgno"] + 1) * self._env.stat()["psize"]
        if used > info["map_size"] * GROW_AT:
            self._set_mapsize_locked(max(info["map_size"] * 2, used * 2))

    def _set_mapsize_locked(self, size: int) -> None:
        self._env.set_mapsize(size)
        log.info("store %s: map grown to %d MiB", self._path, size >> 20)
