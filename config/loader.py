"""Build the one validated `Settings` from a TOML file, the environment and `key=value` overrides.

Later sources win: the TOML file, then ``RAYTRADER_*`` environment variables, then CLI-style
overrides. The merged document is validated once by the models in `config.models`, and every
problem is reported together in one `ConfigError`, one line each, naming where the bad value came
from (the file, ``environment variable RAYTRADER_X`` or ``override k=v``), the field path and what
was expected versus what was got::

    /etc/rt.toml: strategies[name=mean_reversion].bb_std: expected a value > 0.0, got -1.0

Decisions, so nobody has to guess:

- Secrets come only from the environment: ``RAYTRADER_SECRETS__<NAME>`` or
  ``RAYTRADER_SECRETS__<NAME>_FILE=/path`` (the file's content, stripped; a relative path is relative
  to the working directory, like any path given in a shell). A ``[secrets]`` table with values in a
  TOML file is refused, because config files get committed; so is a ``secrets.x=...`` override,
  because command lines land in shell history and the process list. Secret values are never parsed
  and never echoed in errors. An empty ``RAYTRADER_SECRETS__<NAME>`` counts as unset (docker compose
  passes "" for unset variables; live mode still refuses missing secrets); an empty ``*_FILE`` is an
  error, since a file was asked for. A secret that belongs to another section (``notify.smtp_password``,
  see `FIELD_SECRETS`) is treated the same way: ``RAYTRADER_NOTIFY__SMTP_PASSWORD[_FILE]`` only.
- Environment and override values are read as TOML values when they parse (``0.01``, ``true``,
  ``[12, 23]``, ``{url = "..."}``), otherwise as plain strings (``live``, ``http://host:1``). Quote
  to force a string: ``'"123"'``. TOML dates and times stay strings.
- Environment names are case-insensitive and nest with double underscores:
  ``RAYTRADER_PORTFOLIO__RISK_PER_TRADE``. ``RAYTRADER_CONFIG`` is reserved for the CLI (which file to
  load) and ignored here; any other ``RAYTRADER_*`` name must map to a setting, so a typo is an error.
- Strategies are addressed by name: ``strategies.mean_reversion.bb_std=2.5``; in the environment a
  ``-`` in a name is written ``_`` and case is ignored. A number addresses by position when no
  strategy has that name.
- Relative paths in ``state_dir`` and ``replay.*`` are anchored at `PROJECT_ROOT` (see
  `resolve_path`) after validation, so one config works from any working directory. The config file
  path itself is taken as given (relative to the working directory).
- Market patterns (``markets = ["binance:*/USDT"]``) are resolved after validation by
  `config.market_patterns` (the rules are there); one that matches nothing is reported at the
  strategy's ``markets`` with the source that wrote it.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from config.market_patterns import available_markets, resolve_markets
from config.models import (
    STRATEGY_KINDS,
    MeanReversionConfig,
    MlMomentumConfig,
    MomentumBreakoutConfig,
    PolymarketLagConfig,
    ReplayConfig,
    Secrets,
    Settings,
)

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_CONFIG",
    "ENV_PREFIX",
    "FIELD_SECRETS",
    "PROJECT_ROOT",
    "RESERVED_ENV",
    "ConfigError",
    "Problem",
    "env_var",
    "load_settings",
    "parse_value",
    "resolve_path",
]

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = CONFIG_DIR.parent
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"
ENV_PREFIX = "RAYTRADER_"
RESERVED_ENV = frozenset({"RAYTRADER_CONFIG"})
"""RAYTRADER_* names that are not settings (the CLI's own variables); load_settings skips them."""
FIELD_SECRETS: frozenset[tuple[str, str]] = frozenset({("notify", "smtp_password")})
"""Secrets kept beside the settings they belong to rather than in [secrets]; environment only, like those."""

_FILE_SUFFIX = "_file"
_MAX_SHOWN = 80

Seg = str | int
DataPath = tuple[Seg, ...]

_KIND_MODELS: dict[str, type[BaseModel]] = {
    "momentum_breakout": MomentumBreakoutConfig,
    "mean_reversion": MeanReversionConfig,
    "ml_momentum": MlMomentumConfig,
    "polymarket_lag": PolymarketLagConfig,
}
assert set(_KIND_MODELS) == set(STRATEGY_KINDS), "config.models grew a strategy kind the loader misses"

_BOUNDS: dict[str, tuple[str, str]] = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}

# Settings-level validators report at the root; these rules give such errors a field path and
# tell which sources fed them. (message fragment, path shown, data paths involved; "*" = any)
_ROOT_RULES: tuple[tuple[str, str, tuple[DataPath, ...]], ...] = (
    ("names must be unique", "strategies[*].name", (("strategies", "*", "name"),)),
    (
        "allocations",
        "strategies[*].allocation + portfolio.cash_reserve",
        (("strategies", "*", "allocation"), ("strategies", "*", "enabled"), ("portfolio", "cash_reserve")),
    ),
    (
        "live mode needs secrets",
        "secrets",
        (("mode",), ("strategies", "*", "market"), ("strategies", "*", "enabled")),
    ),
)


@dataclass(frozen=True)
class Problem:
    """One mistake: where it came from, which field, and expected-versus-got."""

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.source}: {self.path}: {self.message}" if self.path else f"{self.source}: {self.message}"
        )


class ConfigError(ValueError):
    """Every problem in a configuration, one line each; a ValueError so callers can treat it as bad input."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- public API


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
    markets: Sequence[str] = (),
) -> Settings:
    """Load `path` (default: the packaged default.toml), apply `env` (default: os.environ) and
    `overrides` ("key.path=value"), validate, resolve market patterns (`config.market_patterns`:
    against ``replay.candles`` and ``markets``, e.g. the research CLI's ``--data MARKET=FILE``),
    and anchor relative paths at PROJECT_ROOT.

    Raises ConfigError listing every problem found.
    """
    file = Path(path) if path is not None else DEFAULT_CONFIG
    builder = _Builder(str(file), _read_toml(file))
    builder.take_file_secrets_out()
    builder.apply_env(os.environ if env is None else env)
    builder.apply_overrides(overrides)
    return _with_resolved_paths(builder.resolve_patterns(builder.validate(), markets))


def resolve_path(p: Path) -> Path:
    """Expand ``~`` and anchor a relative path at PROJECT_ROOT (the parent of the config package), so the
    bundled data and the state directory are found whatever the working directory; absolute paths stay."""
    p = p.expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def parse_value(raw: str) -> Any:
    """Read an environment/override value as a TOML value if it is one, else keep the string.

    Dates and times stay strings (no setting is a date), and anything that would define more than
    one key (an embedded newline) is a string too.
    """
    try:
        doc = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    if set(doc) != {"v"}:
        return raw
    value = doc["v"]
    if isinstance(value, date | time):
        return raw
    return value


# --------------------------------------------------------------------------- reading


def _read_toml(file: Path) -> dict[str, Any]:
    """Parse the file, turning I/O, encoding and syntax errors into a ConfigError that points at it."""
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem(str(file), "", f"cannot read config file: {exc.strerror or exc}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(file), "", f"expected UTF-8 text, got byte {exc.start}")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message, re.DOTALL)
        if found:
            reason, line, col = found[1], int(found[2]), int(found[3])
        else:  # "(at end of document)": point just past the last character
            reason = message.removesuffix(" (at end of document)")
            line = text.count("\n") + 1
            col = len(text.rsplit("\n", 1)[-1]) + 1
        where = f"line {line}, column {col}"
        raise ConfigError([Problem(str(file), where, f"TOML syntax error: {reason}")]) from None


@dataclass(frozen=True)
class _Write:
    """A value put into the document by the environment or an override, to attribute errors to it."""

    path: DataPath
    source: str


class _Builder:
    """The merged document plus who wrote what, and the problems found while merging."""

    def __init__(self, file: str, data: dict[str, Any]) -> None:
        self.file = file
        self.data = data
        self.original = copy.deepcopy(data)
        self.writes: list[_Write] = []
        self.problems: list[Problem] = []
        self.secret_sources: dict[str, str] = {}

    def problem(self, source: str, path: str, message: str) -> None:
        self.problems.append(Problem(source, path, message))

    # ----------------------------------------------------------------- sources

    def take_file_secrets_out(self) -> None:
        """Refuse secrets written in the file (naming the variables to use instead, never the value)."""
        for path in sorted(FIELD_SECRETS):
            table = self.data.get(path[0])
            if isinstance(table, dict) and path[1] in table:
                del table[path[1]]
                var = _field_secret_env(path)
                self.problem(
                    self.file,
                    ".".join(path),
                    "secrets must not be written in a config file (it gets "
                    f"committed); expected environment variable {var} or {var}_FILE instead",
                )
        secrets = self.data.pop("secrets", None)
        if secrets is None:
            return
        if not isinstance(secrets, dict):
            self.problem(
                self.file,
                "secrets",
                "secrets must not be written in a config file (it gets committed); "
                "expected RAYTRADER_SECRETS__<NAME> or RAYTRADER_SECRETS__<NAME>_FILE in the environment",
            )
            return
        for key in secrets:
            var = f"{ENV_PREFIX}SECRETS__{str(key).upper()}"
            self.problem(
                self.file,
                f"secrets.{key}",
                "secrets must not be written in a config file (it gets "
                f"committed); expected environment variable {var} or {var}_FILE instead",
            )

    def apply_env(self, env: Mapping[str, str]) -> None:
        """Apply RAYTRADER_* variables in a stable order (parents before children)."""
        seen: dict[tuple[str, ...], str] = {}
        names = sorted((n for n in env if n.upper().startswith(ENV_PREFIX)), key=lambda n: (n.upper(), n))
        for name in names:
            if name.upper() in RESERVED_ENV:
                continue
            source = f"environment variable {name}"
            segs = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
            if not all(segs):
                self.problem(
                    source,
                    "",
                    f"malformed name; expected {ENV_PREFIX}<SECTION>__<FIELD>, "
                    f"e.g. {ENV_PREFIX}PORTFOLIO__RISK_PER_TRADE",
                )
                continue
            if segs in seen:
                self.problem(
                    source,
                    ".".join(segs),
                    f"also set by environment variable {seen[segs]}; expected it set once",
                )
                continue
            seen[segs] = name
            field_secret = _field_secret_of(segs)
            if field_secret is not None:
                self._env_field_secret(name, *field_secret, env[name])
            elif segs[0] == "secrets":
                self._env_secret(name, segs, env[name])
            elif _smuggles_field_secret(segs, env[name]):
                self.problem(
                    source,
                    ".".join(segs),
                    "expected a secret in its own variable: "
                    + " or ".join(f"{_field_secret_env(p)}[_FILE]" for p in sorted(FIELD_SECRETS)),
                )
            else:
                self._set(segs, parse_value(env[name]), source, loose_names=True)

    def _env_secret(self, name: str, segs: tuple[str, ...], raw: str) -> None:
        """A secret from RAYTRADER_SECRETS__<NAME> or the file named by RAYTRADER_SECRETS__<NAME>_FILE."""
        source = f"environment variable {name}"
        known = ", ".join(f"{ENV_PREFIX}SECRETS__{n.upper()}[_FILE]" for n in Secrets.model_fields)
        if len(segs) != 2:
            self.problem(source, "secrets", f"expected one secret per variable, one of: {known}")
            return
        field, from_file = segs[1], False
        if field not in Secrets.model_fields and field.endswith(_FILE_SUFFIX):
            field, from_file = field.removesuffix(_FILE_SUFFIX), True
        if field not in Secrets.model_fields:
            self.problem(source, f"secrets.{segs[1]}", f"unknown secret; expected one of: {known}")
            return
        value = self._read_secret(source, f"secrets.{field}", raw, from_file=from_file)
        if value is None:
            return
        if field in self.secret_sources:
            self.problem(
                source,
                f"secrets.{field}",
                f"also given by {self.secret_sources[field]}; expected the secret given one way only",
            )
            return
        self.secret_sources[field] = source
        self.data.setdefault("secrets", {})[field] = value
        self.writes.append(_Write(("secrets", field), source))

    def _read_secret(self, source: str, shown: str, raw: str, *, from_file: bool) -> str | None:
        """The secret's value (from the file named by `raw` if `from_file`); None if unset or unreadable."""
        if not from_file:
            return raw.strip() or None  # empty = unset, see the module docstring
        secret_file = Path(raw).expanduser()
        try:
            value = secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.problem(
                source, shown, f"expected a readable file holding the secret, got {raw!r} ({reason})"
            )
            return None
        if not value:
            self.problem(source, shown, f"expected a file holding the secret, got empty file {raw!r}")
            return None
        return value

    def _env_field_secret(self, name: str, path: tuple[str, str], from_file: bool, raw: str) -> None:
        """A secret of FIELD_SECRETS from its own variable (or the file its ``_FILE`` variable names)."""
        source = f"environment variable {name}"
        shown = ".".join(path)
        value = self._read_secret(source, shown, raw, from_file=from_file)
        if value is None:
            return
        if shown in self.secret_sources:
            self.problem(
                source,
                shown,
                f"also given by {self.secret_sources[shown]}; expected the secret given one way only",
            )
            return
        self.secret_sources[shown] = source
        table = self.data.get(path[0])
        if not isinstance(table, dict):
            table = self.data[path[0]] = {}
        table[path[1]] = value
        self.writes.append(_Write(path, source))

    def apply_overrides(self, overrides: Sequence[str]) -> None:
        """Apply "key.path=value" overrides in order; secrets are refused (shell history, ps)."""
        for item in overrides:
            key, sep, raw = item.partition("=")
            key, raw = key.strip(), raw.strip()
            segs = tuple(key.split("."))
            lowered = tuple(s.lower() for s in segs)
            if _field_secret_of(lowered) is not None or _smuggles_field_secret(lowered, raw):
                var = " or ".join(_field_secret_env(p) for p in sorted(FIELD_SECRETS))
                self.problem(
                    f"override {key}=<redacted>",
                    key,
                    "secrets are not accepted on the command line "
                    f"(shell history, process list); expected environment variable {var} (or *_FILE)",
                )
                continue
            if segs[0].lower() == "secrets":
                var = f"{ENV_PREFIX}SECRETS__{segs[1].upper() if len(segs) == 2 else '<NAME>'}"
                self.problem(
                    f"override {key}=<redacted>",
                    key,
                    "secrets are not accepted on the command line "
                    f"(shell history, process list); expected environment variable {var} or {var}_FILE",
                )
                continue
            source = f"override {item}"
            if not sep or not all(segs):
                self.problem(
                    source,
                    "",
                    "expected key.path=value, e.g. portfolio.max_concurrent_positions=3 "
                    "or strategies.mean_reversion.bb_std=2.5",
                )
                continue
            self._set(segs, parse_value(raw), source, loose_names=False)

    def _set(self, segs: Sequence[str], value: Any, source: str, *, loose_names: bool) -> None:
        """Put `value` at `segs`, creating tables on the way; strategies are found by name."""
        node: Any = self.data
        where: list[Seg] = []
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if isinstance(node, list):
                index = self._list_index(node, seg, is_strategies=where == ["strategies"], loose=loose_names)
                if index is None:
                    if where == ["strategies"]:
                        names = [s.get("name") for s in node if isinstance(s, dict)]
                        expected = (
                            f"expected one of: {', '.join(map(str, names))}" if names else "there is none"
                        )
                        self.problem(source, "strategies", f"no strategy named {seg!r}; {expected}")
                    else:
                        self.problem(
                            source,
                            self.display(tuple(where)),
                            f"expected an index below {len(node)}, got {seg!r}",
                        )
                    return
                where.append(index)
                if last:
                    node[index] = value
                else:
                    node = node[index]
                continue
            if not isinstance(node, dict):
                self.problem(
                    source,
                    self.display(tuple(where)),
                    f"expected a table to hold {seg!r}, got {_shown(node)}",
                )
                return
            where.append(seg)
            if last:
                node[seg] = value
            else:
                if node.get(seg) is None:
                    node[seg] = [] if where == ["strategies"] else {}
                node = node[seg]
        self.writes.append(_Write(tuple(where), source))

    @staticmethod
    def _list_index(node: list[Any], seg: str, *, is_strategies: bool, loose: bool) -> int | None:
        """Strategy by exact name, then (env) by case/dash-insensitive name, then by position."""
        if is_strategies:
            names = [s.get("name") if isinstance(s, dict) else None for s in node]
            if seg in names:
                return names.index(seg)
            if loose:
                folded = [n.lower().replace("-", "_") if isinstance(n, str) else None for n in names]
                if folded.count(seg) == 1:
                    return folded.index(seg)
        if seg.isdigit() and int(seg) < len(node):
            return int(seg)
        return None

    # ----------------------------------------------------------------- validation and messages

    def validate(self) -> Settings:
        """Validate once; raise every merge and validation problem together, with no chained exception
        (pydantic's own error text includes input values, which may be secrets)."""
        errors: list[ErrorDetails] = []
        settings: Settings | None = None
        try:
            settings = Settings.model_validate(self.data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        self._explain(errors)
        if self.problems or settings is None:
            raise ConfigError(self.problems)
        return settings

    def resolve_patterns(self, settings: Settings, extra: Sequence[str]) -> Settings:
        """Settings with every strategy's market patterns resolved; a pattern matching nothing is a
        problem of the strategy's ``markets`` (or ``market``, where only that was written)."""
        resolved, failed = resolve_markets(settings, extra)
        strategies = self.data.get("strategies")
        for index, patterns in failed.items():
            item = strategies[index] if isinstance(strategies, list) and index < len(strategies) else None
            field = "markets" if isinstance(item, dict) and "markets" in item else "market"
            path: DataPath = ("strategies", index, field)
            where = "replay.candles" + (" and the run's data" if extra else "")
            available = ", ".join(available_markets(settings, extra)) or "none"
            self.problem(
                self._sources_for(path),
                self.display(path),
                f"pattern{'s' if len(patterns) > 1 else ''} {', '.join(map(repr, patterns))} "
                f"match{'' if len(patterns) > 1 else 'es'} no market; patterns resolve against the markets "
                f"of {where} ({available}), never the venue's listing",
            )
        if self.problems:
            raise ConfigError(self.problems)
        return resolved

    def _explain(self, errors: list[ErrorDetails]) -> None:
        """Group pydantic errors by field (a union reports one error per member) and phrase each group."""
        groups: dict[DataPath, list[ErrorDetails]] = {}
        for err in errors:
            groups.setdefault(_canonical(err["loc"]), []).append(err)
        for path, errs in groups.items():
            if not path:
                for err in errs:
                    self._explain_root(err)
                continue
            first = errs[0]
            shown_path = self.display(path)
            if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
                shown_path += ".kind"
            messages = [self._describe(err, path) for err in errs]
            if len(messages) > 1 and all(m.startswith("expected ") and ", got " in m for m in messages):
                got = messages[0].rsplit(", got ", 1)[1]
                wants = [m.removeprefix("expected ").rsplit(", got ", 1)[0] for m in messages]
                message = f"expected {' or '.join(wants)}, got {got}"
            else:
                message = "; ".join(messages)
            self.problem(self._sources_for(path), shown_path, message)

    def _explain_root(self, err: ErrorDetails) -> None:
        """A Settings-level rule: find its field path and every source that fed the fields involved."""
        message = _strip_value_error(err["msg"])
        rule = next((r for r in _ROOT_RULES if r[0] in message), ("", "(settings)", ((),)))
        _, shown_path, patterns = rule
        sources = [self.file] + [w.source for w in self.writes if any(_overlaps(w.path, p) for p in patterns)]
        self.problem(" + ".join(dict.fromkeys(sources)), shown_path, message)

    def _sources_for(self, path: DataPath) -> str:
        """The last writer of the field or a parent (else the file), plus later writers of its children
        (a rule on a table, like rsi_buy < rsi_sell, can be broken by an override of one field)."""
        base, base_i = self.file, -1
        for i, w in enumerate(self.writes):
            if path[: len(w.path)] == w.path:
                base, base_i = w.source, i
        later = [
            w.source
            for i, w in enumerate(self.writes)
            if i > base_i and len(w.path) > len(path) and w.path[: len(path)] == path
        ]
        if base_i < 0 and later and not self._in_file(path):
            return " + ".join(dict.fromkeys(later))  # e.g. a misspelt section made up by the environment
        return " + ".join(dict.fromkeys([base, *later]))

    def _in_file(self, path: DataPath) -> bool:
        """Whether the config file itself has a value at `path`."""
        node: Any = self.original
        for seg in path:
            in_table = isinstance(node, dict) and isinstance(seg, str) and seg in node
            in_list = isinstance(node, list) and isinstance(seg, int) and seg < len(node)
            if not (in_table or in_list):
                return False
            node = node[seg]
        return True

    def _describe(self, err: ErrorDetails, path: DataPath) -> str:
        """Phrase one pydantic error as expected-versus-got; never show a secret or a whole table."""
        kind, msg = err["type"], err["msg"]
        ctx: dict[str, Any] = dict(err.get("ctx") or {})
        got = _shown(err.get("input"), secret=path[0] == "secrets" or path[:2] in FIELD_SECRETS)
        if kind == "extra_forbidden":
            model = self.model_at(path[:-1])
            known = list(model.model_fields) if model is not None else []
            close = difflib.get_close_matches(str(path[-1]), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return f"unknown field {path[-1]!r}; {hint}expected one of: {', '.join(known)}"
        if kind == "missing":
            return "expected a value, got nothing (required field is missing)"
        if kind == "union_tag_invalid":
            return f"unknown strategy kind {ctx.get('tag')!r}; expected one of: {', '.join(STRATEGY_KINDS)}"
        if kind == "union_tag_not_found":
            return f"expected a strategy kind, one of: {', '.join(STRATEGY_KINDS)}, got none"
        if kind in _BOUNDS:
            op, key = _BOUNDS[kind]
            return f"expected a value {op} {ctx.get(key)}, got {got}"
        if msg.startswith("Input should be "):
            want = re.sub(r", unable to (parse|interpret) .*$", "", msg.removeprefix("Input should be "))
            return f"expected {want} ({got})" if ", got " in want else f"expected {want}, got {got}"
        text = _strip_value_error(msg)
        if "got" in text or isinstance(err.get("input"), dict):
            return text
        return f"{text}, got {got}"

    def display(self, path: DataPath) -> str:
        """`strategies[name=mr].bb_std` for a strategy with a name, `a.b[0]` otherwise."""
        out = ""
        for i, seg in enumerate(path):
            if isinstance(seg, int):
                name = None
                if i == 1 and path[0] == "strategies":
                    strategies = self.data.get("strategies")
                    item = strategies[seg] if isinstance(strategies, list) and seg < len(strategies) else None
                    name = item.get("name") if isinstance(item, dict) else None
                out += f"[name={name}]" if isinstance(name, str) and name else f"[{seg}]"
            else:
                out += f".{seg}" if out else seg
        return out

    def model_at(self, path: DataPath) -> type[BaseModel] | None:
        """The model that validates the table at `path` of the document (strategies by their kind)."""
        model: type[BaseModel] | None = Settings
        i = 0
        while i < len(path) and model is not None:
            seg = path[i]
            if model is Settings and seg == "strategies" and i + 1 < len(path):
                strategies = self.data.get("strategies")
                index = path[i + 1]
                item = (
                    strategies[index]
                    if isinstance(strategies, list) and isinstance(index, int) and index < len(strategies)
                    else None
                )
                kind = item.get("kind") if isinstance(item, dict) else None
                model = _KIND_MODELS.get(kind) if isinstance(kind, str) else None
                i += 2
                continue
            if not isinstance(seg, str) or seg not in model.model_fields:
                return None
            members = _union_members(model.model_fields[seg].annotation)
            model = _as_model(members[0]) if len(members) == 1 else None
            i += 1
        return model


# --------------------------------------------------------------------------- helpers


def env_var(dotted: str) -> str:
    """The environment variable of a setting: ``secrets.binance_api_key`` ->
    ``RAYTRADER_SECRETS__BINANCE_API_KEY``."""
    return f"{ENV_PREFIX}{dotted.replace('.', '__').upper()}"


def _field_secret_env(path: tuple[str, str]) -> str:
    return env_var(".".join(path))


def _field_secret_of(segs: tuple[str, ...]) -> tuple[tuple[str, str], bool] | None:
    """(secret path, from a file) if `segs` (lower case) names a FIELD_SECRETS entry or its ``_file`` form."""
    for path in FIELD_SECRETS:
        if segs == path:
            return path, False
        if segs == (path[0], path[1] + _FILE_SUFFIX):
            return path, True
    return None


def _smuggles_field_secret(segs: tuple[str, ...], raw: str) -> bool:
    """Whether a whole-table value (``notify={smtp_password = "..."}``) would carry a FIELD_SECRETS entry."""
    for path in FIELD_SECRETS:
        if segs == path[:1]:
            value = parse_value(raw)
            if isinstance(value, dict) and any(str(k).lower() == path[1] for k in value):
                return True
    return False


def _canonical(loc: tuple[int | str, ...]) -> DataPath:
    """Turn a pydantic error location into a document path: drop the strategy-kind tag and the member
    names pydantic adds inside plain unions (('replay', 'speed', 'float') -> ('replay', 'speed'))."""
    out: list[Seg] = []
    model: type[BaseModel] | None = Settings
    i = 0
    while i < len(loc):
        seg = loc[i]
        out.append(seg)
        i += 1
        if model is None or not isinstance(seg, str) or seg not in model.model_fields:
            model = None
            continue
        if model is Settings and seg == "strategies":
            if i < len(loc) and isinstance(loc[i], int):
                out.append(loc[i])
                i += 1
            tag = loc[i] if i < len(loc) else None
            model = _KIND_MODELS.get(tag) if isinstance(tag, str) else None
            if model is not None:
                i += 1
            continue
        members = _union_members(model.model_fields[seg].annotation)
        if len(members) > 1:
            if i < len(loc) and isinstance(loc[i], str):
                i += 1
            model = None
        else:
            model = _as_model(members[0])
    return tuple(out)


def _union_members(annotation: Any) -> list[Any]:
    """The non-None members of a union annotation, or the annotation alone."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _as_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _overlaps(written: DataPath, pattern: DataPath) -> bool:
    """Whether a write at `written` touches `pattern` (either one a prefix of the other; "*" = any)."""
    return all(p in ("*", w) for w, p in zip(written, pattern, strict=False))


def _strip_value_error(msg: str) -> str:
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _shown(value: Any, *, secret: bool = False) -> str:
    """A short rendering of a bad value; secrets and whole tables are never shown."""
    if secret:
        return "<redacted>"
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _with_resolved_paths(settings: Settings) -> Settings:
    """Anchor state_dir and every replay path at PROJECT_ROOT (models are frozen, so copy)."""
    replay_paths: dict[str, Any] = {
        name: resolve_path(value)
        for name in ReplayConfig.model_fields
        if isinstance(value := getattr(settings.replay, name), Path)
    }
    replay_paths["candles"] = {market: resolve_path(path) for market, path in settings.replay.candles.items()}
    return settings.model_copy(
        update={
            "state_dir": resolve_path(settings.state_dir),
            "replay": settings.replay.model_copy(update=replay_paths),
        }
    )
