"""The effective settings as text, for ``raytrader config show``: TOML that loads back, or JSON.

Secrets are never rendered: TOML names each one in a comment saying whether it is set (a config
file may not hold them), JSON shows a mask or null.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from config.loader import FIELD_SECRETS, env_var
from config.models import Secrets, Settings

MASK = "**********"
"""What a set secret shows as in JSON output."""


def dump_settings(settings: Settings, fmt: Literal["toml", "json"] = "toml") -> str:
    """Render the effective settings for ``raytrader config show``, secrets masked.

    TOML output loads back with load_settings (secrets appear only as comments saying whether they are
    set, since a config file may not hold them); JSON output shows them as a mask or null.
    """
    data = settings.model_dump(mode="json")
    secrets_set = {name: getattr(settings.secrets, name) is not None for name in Secrets.model_fields}
    field_secrets_set = {
        (section, name): getattr(getattr(settings, section), name) is not None
        for section, name in sorted(FIELD_SECRETS)
    }
    if fmt == "json":
        data["secrets"] = {name: (MASK if is_set else None) for name, is_set in secrets_set.items()}
        for (section, name), is_set in field_secrets_set.items():
            data[section][name] = MASK if is_set else None
        return json.dumps(data, indent=2) + "\n"
    data.pop("secrets", None)
    for section, name in field_secrets_set:
        data[section].pop(name, None)
    lines = ["# effective raytrader settings; secrets come from the environment and are never shown"]
    _emit_table(lines, [], data, array_item=False)
    lines += [
        "",
        "# [secrets] (environment only: RAYTRADER_SECRETS__<NAME> or RAYTRADER_SECRETS__<NAME>_FILE)",
    ]
    lines += [f"# {name} = {'set' if is_set else 'not set'}" for name, is_set in secrets_set.items()]
    for (section, name), is_set in field_secrets_set.items():
        var = env_var(f"{section}.{name}")
        lines.append(
            f"# {section}.{name} = {'set' if is_set else 'not set'} (environment only: {var} or {var}_FILE)"
        )
    return "\n".join(lines) + "\n"


def _emit_table(lines: list[str], prefix: list[str], table: Mapping[str, Any], *, array_item: bool) -> None:
    """Emit one table: its values, then sub-tables, then arrays of tables (TOML's required order)."""
    values = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
    if prefix:
        dotted = ".".join(_toml_key(k) for k in prefix)
        lines += ["", f"[[{dotted}]]" if array_item else f"[{dotted}]"]
    for key, value in values.items():
        name = _toml_key(key)
        lines.append(f"# {name} is unset" if value is None else f"{name} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _emit_table(lines, [*prefix, key], value, array_item=False)
    for key, value in table.items():
        if _is_table_array(value):
            for item in value:
                _emit_table(lines, [*prefix, key], item, array_item=True)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_\-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    """A TOML literal for a JSON-mode value (None inside arrays/inline tables has no TOML form)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")
