"""The store's export format: JSON lines ``{"kind","key","v","data"}`` plus a ``meta/schema`` line.

Parsing validates a whole file before anything is written, and a file export is written to a
temporary file, fsynced and renamed, so a backup is never half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from actors.store.records import KINDS, SCHEMA_KEY, SchemaError, StoreError

ExportRecord = tuple[str, str, int, dict[str, Any]]
"""(kind, key, schema version, data) of one exported record."""


def write_atomically(target: Path, write: Callable[[IO[str]], int]) -> int:
    """Run ``write`` into a temporary file beside ``target``, fsync, rename; returns its count."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            n = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return n


def parse_export(
    fh: IO[str], name: str, schema_version: int, store_path: Path
) -> tuple[list[ExportRecord], int]:
    """Validate a whole export before anything is written; returns records and file schema."""
    records: list[ExportRecord] = []
    file_version: int | None = None
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise StoreError(f"{where}: not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise StoreError(f"{where}: a record is a JSON object")
        kind, key, v, data = obj.get("kind"), obj.get("key"), obj.get("v"), obj.get("data")
        if kind not in KINDS or not isinstance(key, str) or not key:
            raise StoreError(f"{where}: bad kind/key {kind!r}/{key!r}")
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or not isinstance(data, dict):
            raise StoreError(f"{where}: bad envelope (v={v!r}, data is {type(data).__name__})")
        if kind == "meta" and key == SCHEMA_KEY:
            version = data.get("version")
            if not isinstance(version, int) or isinstance(version, bool):
                raise StoreError(f"{where}: bad schema version {version!r}")
            file_version = version
            continue
        records.append((kind, key, v, data))
    if file_version is None:
        raise StoreError(f"{name}: no meta/schema record; not a raytrader export")
    if file_version > schema_version:
        raise SchemaError(
            f"{name}: export schema v{file_version} is newer than this code's v{schema_version} "
            f"(importing into {store_path})"
        )
    newer = [f"{k}/{key}" for k, key, v, _ in records if v > file_version]
    if newer:
        raise StoreError(f"{name}: records newer than the file's schema v{file_version}: {newer[:3]}")
    return records, file_version
