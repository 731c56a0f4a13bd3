"""Fuzz inputs shared by the fuzz modules: nasty text and numbers, JSON values, mutated fixtures.

``mutated(value)`` edits a recorded payload a little (a field dropped, replaced by nonsense or a
wrong type, deeper); ``dumps`` writes JSON as a venue might (mis)send it; ``params_strategy``
draws query parameters around a valid base.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)

NASTY_TEXT = [
    "",
    " ",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e999",
    "-1e999",
    "1e-999",
    "-1",
    "-0",
    "0",
    "0.0",
    "-0.0000001",
    "99999999999999999999",
    "99999999999999999999.99999999999999999999",
    "9" * 400,
    "9" * 4400,
    "0x10",
    "1_000",
    "1,5",
    "1.2.3",
    "--1",
    "+1",
    " 1",
    "１２３",
    "²",
    "٣",
    "null",
    "true",
    "[]",
    "{}",
    "\x00",
    "é",
    "💥",
    "%",
    "&",
    "=",
    "'",
    '"',
]
NASTY_NUMBERS: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    0,
    -0.0,
    1e308,
    -1e308,
    2**63,
    2**64 + 1,
    2**256,
    10**30,
    -(10**30),
    1e-300,
]
nasty_text = st.sampled_from(NASTY_TEXT) | st.text(max_size=12)
json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(NASTY_NUMBERS) | nasty_text
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """`value` with a few random edits: a field dropped, replaced by nonsense or a wrong type, deeper."""
    if isinstance(value, dict) and value and depth < 4:
        out = dict(value)
        for key in draw(st.lists(st.sampled_from(sorted(out)), min_size=1, max_size=3, unique=True)):
            action = draw(st.sampled_from(["drop", "replace", "recurse", "recurse"]))
            if action == "drop":
                del out[key]
            elif action == "replace":
                out[key] = draw(json_values)
            else:
                out[key] = draw(mutated(out[key], depth + 1))
        if draw(st.booleans()):
            out[draw(st.text(max_size=8))] = draw(json_values)
        return out
    if isinstance(value, list) and value and depth < 4:
        out_list = list(value)
        i = draw(st.integers(0, len(out_list) - 1))
        action = draw(st.sampled_from(["drop", "replace", "recurse", "duplicate"]))
        if action == "drop":
            del out_list[i]
        elif action == "replace":
            out_list[i] = draw(json_values)
        elif action == "duplicate":
            out_list.append(copy.deepcopy(out_list[i]))
        else:
            out_list[i] = draw(mutated(out_list[i], depth + 1))
        return out_list
    return draw(json_values)


def dumps(value: Any) -> str:
    """JSON as a venue might (mis)send it: NaN and Infinity literals included, no sorting."""
    return json.dumps(value, allow_nan=True)


def params_strategy(base: dict[str, str], extra_keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    def stringify(value: Any) -> str:
        return value if isinstance(value, str) else dumps(value)

    texts = nasty_text | json_leaves.map(stringify)
    return st.fixed_dictionaries(
        {},
        optional={k: texts | st.just(v) for k, v in base.items()}
        | {k: texts for k in extra_keys if k not in base},
    )
