"""The ops configs are valid to their own tools and agree with the code.

- Prometheus: `promtool check config`, `promtool check rules`, `promtool test rules` (every alert
  has a firing and a quiet case), and the scrape targets match `MetricsConfig` and Ray's
  service-discovery file.
- Alertmanager: `amtool check-config` and the severity routes.
- Grafana: the dashboard parses, every panel has targets, every expr is valid PromQL.
- Every metric name in an alert, an alert test or a dashboard expr is one raytrader exports
  (`supervisor.control.metrics.SPECS` as prometheus_client exposes it), a recorded limit of alerts.yml,
  Prometheus' `up`, or one of Ray's own `ray_*` metrics.
- Ray: ops/ray/cluster.yaml passes the cluster launcher's own bootstrap and validation (what
  `ray up` runs before touching a node), and broken variants fail it.

promtool and amtool come from Debian's `prometheus` and `prometheus-alertmanager` packages. Without
them these tests skip, except under CI=true, where a missing tool is a failure.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from config.models import MetricsConfig
from supervisor.control.metrics import SPECS, MetricsRegistry
from tests.paths import REPO_ROOT

ROOT = REPO_ROOT
PROMETHEUS_YML = ROOT / "ops" / "prometheus" / "prometheus.yml"
ALERTS_YML = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERTS_TEST_YML = ROOT / "ops" / "prometheus" / "alerts_test.yml"
ALERTMANAGER_YML = ROOT / "ops" / "alertmanager" / "alertmanager.yml"
DASHBOARD_JSON = ROOT / "ops" / "grafana" / "raytrader.json"
CLUSTER_YAML = ROOT / "ops" / "ray" / "cluster.yaml"

REQUIRED_ALERTS = {
    "RaytraderActorDown",
    "HeartbeatStale",
    "RestartBudgetSpent",
    "OrphanOrderFound",
    "StuckPosition",
    "DrawdownOverLimit",
    "FeedLagHigh",
    "VenueErrors",
    "TradingHalted",
    "RaytraderDown",
}
SEVERITY_RECEIVERS = {"critical": "webhook,email", "warning": "webhook"}
INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager"


# --------------------------------------------------------------------------- helpers


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is not None:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed, and CI=true requires it ({INSTALL_HINT})")
    pytest.skip(f"{name} is not installed ({INSTALL_HINT}); under CI=true this is a failure")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    )


def _load_yaml(path: Path) -> Any:
    with path.open() as f:
        return yaml.safe_load(f)


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(ALERTS_YML)["groups"] for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def _recorded_names() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_JSON.read_text())
    return data


def _dashboard_exprs() -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable's metric selector."""
    out = [
        (f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"])
        for panel in _panels(_dashboard())
        for target in panel.get("targets", [])
    ]
    for var in _dashboard()["templating"]["list"]:
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            out.append((f"variable {var['name']}", match.group(1) if match else query))
    return out


GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "1m", "__range": "6h", "instance": ".*"}


def _grafana_to_promql(expr: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: GRAFANA_VARS[m.group(1)], expr)


# --------------------------------------------------------------------------- metric names

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "and", "or", "unless", "atan2", "inf", "nan", "start", "end",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL (or Grafana-templated PromQL) expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, is_call = match.group(1), match.group(2)
        if not is_call and word.lower() not in PROMQL_WORDS:
            names.add(word)
    return names


def exported_names() -> set[str]:
    """Every sample name raytrader's /metrics can show: each SPEC touched once, then rendered."""
    from prometheus_client import generate_latest

    reg = MetricsRegistry()
    for spec in SPECS:
        labels = dict.fromkeys(spec.labels, "x")
        if spec.type == "counter":
            reg.inc(spec.name, labels)
        elif spec.type == "gauge":
            reg.set(spec.name, 1.0, labels)
        else:
            reg.observe(spec.name, 0.01, labels)
    text = generate_latest(reg.registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}


def unknown_metrics(exprs: list[tuple[str, str]], allowed: set[str]) -> list[str]:
    return sorted(
        f"{where}: {name}"
        for where, expr in exprs
        for name in metric_names(expr)
        if name not in allowed and name != "up" and not name.startswith("ray_")
    )


@pytest.fixture(scope="module")
def allowed_names() -> set[str]:
    return exported_names() | _recorded_names()


def test_exported_names_follow_prometheus_client_suffixes() -> None:
    names = exported_names()
    assert {"raytrader_actor_restarts_total", "raytrader_equity"} <= names
    assert {f"raytrader_tick_to_order_seconds{s}" for s in ("_bucket", "_sum", "_count")} <= names
    assert "raytrader_actor_restarts" not in names
    assert "raytrader_actor_restarts_total_total" not in names


def test_metric_checker_typo_flagged() -> None:
    exprs = [
        ("typo", 'sum by (venue) (rate(raytrader_fill_total{job="raytrader", x=~"a}b"}[$__rate_interval]))'),
        ("ok", "histogram_quantile(0.99, sum by (le) (rate(raytrader_checkpoint_seconds_bucket[5m]))) > 1e3"),
        ("ok", "raytrader_drawdown_ratio > on() group_left() raytrader:limit_drawdown_ratio offset 10m"),
        ("ok", 'up{job="raytrader"} == 0 or ray_node_cpu_utilization or vector(0)'),
    ]
    allowed = exported_names() | {"raytrader:limit_drawdown_ratio"}
    assert unknown_metrics(exprs, allowed) == ["typo: raytrader_fill_total"]


def test_alert_exprs_only_exported_metrics(allowed_names: set[str]) -> None:
    exprs = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in _rules()]
    assert unknown_metrics(exprs, allowed_names) == []


def test_alert_test_series_only_exported_metrics(allowed_names: set[str]) -> None:
    exprs = []
    for case in _load_yaml(ALERTS_TEST_YML)["tests"]:
        exprs += [(case["name"], series["series"]) for series in case.get("input_series", [])]
        exprs += [(case["name"], test["expr"]) for test in case.get("promql_expr_test", [])]
    assert exprs
    assert unknown_metrics(exprs, allowed_names) == []


def test_grafana_exprs_only_exported_metrics(allowed_names: set[str]) -> None:
    # the dashboard uses raytrader's own metrics only, not the alert limits recorded by Prometheus
    assert unknown_metrics(_dashboard_exprs(), exported_names()) == []


def test_grafana_dashboard_every_metric_shown() -> None:
    shown = {name for _, expr in _dashboard_exprs() for name in metric_names(expr)}
    bases = {re.sub(r"_(bucket|sum|count)$", "", name) for name in shown}
    missing = sorted(spec.name for spec in SPECS if spec.name not in bases)
    assert missing == []


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_config_promtool_check_passes() -> None:
    _ok(_run(_tool("promtool"), "check", "config", str(PROMETHEUS_YML)))


def test_alert_rules_promtool_check_passes() -> None:
    _ok(_run(_tool("promtool"), "check", "rules", str(ALERTS_YML)))


def test_alert_rules_promtool_unit_tests_pass() -> None:
    proc = _run(_tool("promtool"), "test", "rules", str(ALERTS_TEST_YML))
    _ok(proc)
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_broken_rule_promtool_check_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "g", "rules": [{"alert": "X", "expr": "rate(raytrader_fills_total)"}]}]}
        )
    )
    assert _run(_tool("promtool"), "check", "rules", str(bad)).returncode != 0


def test_grafana_exprs_promtool_parse_passes(tmp_path: Path) -> None:
    rules = [
        {"record": f"grafana:expr_{i}", "expr": _grafana_to_promql(expr)}
        for i, (_, expr) in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "grafana_exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    _ok(_run(_tool("promtool"), "check", "rules", str(path)))


def test_prometheus_config_targets_match_code() -> None:
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    config = _load_yaml(PROMETHEUS_YML)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    metrics = MetricsConfig()
    targets = [t for sc in jobs["raytrader"]["static_configs"] for t in sc["targets"]]
    assert targets == [f"{metrics.host}:{metrics.port}"]
    sd_files = [f for sd in jobs["ray"]["file_sd_configs"] for f in sd["files"]]
    assert sd_files == [f"/tmp/ray/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"]
    assert [(PROMETHEUS_YML.parent / f).resolve() for f in config["rule_files"]] == [ALERTS_YML]
    am_targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert am_targets == ["127.0.0.1:9093"]


def test_alert_rules_required_alerts_labelled_and_documented() -> None:
    alerts = _alerts()
    assert set(alerts) >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in SEVERITY_RECEIVERS, name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert all(str(v).strip() for v in rule["annotations"].values()), name


def test_alert_rules_every_alert_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _load_yaml(ALERTS_TEST_YML)["tests"]:
        for test in case.get("alert_rule_test", []):
            (firing if test.get("exp_alerts") else quiet).add(test["alertname"])
    alerts = set(_alerts())
    assert alerts - firing == set(), "alerts without a firing test"
    assert alerts - quiet == set(), "alerts without a not-firing test"


def test_drawdown_limit_defined_once() -> None:
    limits = [r for r in _rules() if r.get("record") == "raytrader:limit_drawdown_ratio"]
    assert len(limits) == 1
    assert limits[0]["expr"].strip() == "vector(0.1)"
    assert "raytrader:limit_drawdown_ratio" in _alerts()["DrawdownOverLimit"]["expr"]


# --------------------------------------------------------------------------- Alertmanager


def test_alertmanager_config_amtool_check_passes() -> None:
    _ok(_run(_tool("amtool"), "check-config", str(ALERTMANAGER_YML)))


def test_alertmanager_severity_routes_reach_receivers() -> None:
    amtool = _tool("amtool")
    severities = {rule["labels"]["severity"] for rule in _alerts().values()}
    assert severities == set(SEVERITY_RECEIVERS)
    for severity, receivers in SEVERITY_RECEIVERS.items():
        _ok(
            _run(
                amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
                f"--verify.receivers={receivers}", f"severity={severity}",
            )
        )  # fmt: skip


def test_alertmanager_receivers_local_endpoints() -> None:
    config = _load_yaml(ALERTMANAGER_YML)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert [w["url"] for w in receivers["webhook"]["webhook_configs"]] == ["http://127.0.0.1:9099/alert"]
    assert config["global"]["smtp_smarthost"] == "127.0.0.1:2525"
    assert config["global"]["smtp_require_tls"] is False
    assert receivers["email"]["email_configs"]


# --------------------------------------------------------------------------- Grafana


def test_grafana_dashboard_parses_with_targets_and_datasource_input() -> None:
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = [p for p in _panels(dashboard) if p["type"] != "row"]
    assert len(panels) >= 15
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]


# --------------------------------------------------------------------------- Ray cluster launcher


def _bootstrap(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does to a config before it touches a node: prepare_config (defaults, the
    local provider's node type), the provider's resource fill-in, and validate_config (the JSON
    schema in ray/autoscaler/ray-schema.json plus its cross-field checks). No cache is written."""
    from ray.autoscaler._private.commands import _bootstrap_config

    result: dict[str, Any] = _bootstrap_config(copy.deepcopy(config), no_config_cache=True)
    return result


def _resources(commands: list[str]) -> dict[str, float]:
    found = [json.loads(m) for cmd in commands for m in re.findall(r"--resources='([^']*)'", cmd)]
    assert len(found) == 1, commands
    resources: dict[str, float] = found[0]
    return resources


def test_cluster_yaml_ray_validation_passes() -> None:
    from ray.autoscaler._private.util import validate_config

    config = _load_yaml(CLUSTER_YAML)
    bootstrapped = _bootstrap(config)
    validate_config(bootstrapped)
    assert bootstrapped["provider"]["type"] == "local"
    assert bootstrapped["head_node_type"] in bootstrapped["available_node_types"]
    assert bootstrapped["max_workers"] == len(config["provider"]["worker_ips"])


def test_cluster_yaml_store_pinned_to_head() -> None:
    config = _load_yaml(CLUSTER_YAML)
    head = _resources(config["head_start_ray_commands"])
    worker = _resources(config["worker_start_ray_commands"])
    assert head.get("raytrader_store") == 1
    assert "raytrader_head" in head
    assert not {"raytrader_store", "raytrader_head"} & set(worker)
    assert any("pip install -e" in cmd for cmd in config["setup_commands"])


def test_cluster_yaml_head_starts_ray_with_the_runtimes_system_config() -> None:
    """A cluster behaves as the local instance ``raytrader run`` starts (recovery relies on it)."""
    from supervisor.control.runtime import RAY_SYSTEM_CONFIG

    head = " ".join(_load_yaml(CLUSTER_YAML)["head_start_ray_commands"])
    found = re.search(r"--system-config='([^']*)'", head)
    assert found is not None, head
    assert json.loads(found.group(1)) == dict(RAY_SYSTEM_CONFIG)


def test_ray_system_config_is_read_only_so_a_ray_start_cannot_change_it() -> None:
    """``ray.init`` writes its spilling settings into the ``_system_config`` dict it is given: a
    shared dict carried one Ray session's spill directory into the next start in the process."""
    from supervisor.control.runtime import RAY_SYSTEM_CONFIG

    with pytest.raises(TypeError):
        RAY_SYSTEM_CONFIG["automatic_object_spilling_enabled"] = 1  # type: ignore[index]


def _drop_head_ip(c: dict[str, Any]) -> None:
    del c["provider"]["head_ip"]


def _typo_key(c: dict[str, Any]) -> None:
    c["head_start_ray_command"] = c.pop("head_start_ray_commands")


def _ips_not_a_list(c: dict[str, Any]) -> None:
    c["provider"]["worker_ips"] = "192.0.2.11"


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        (_drop_head_ip, click.ClickException),  # the launcher's abort: "Please supply a `head_ip`..."
        (_typo_key, jsonschema.ValidationError),  # ray-schema.json: no additional properties
        (_ips_not_a_list, jsonschema.ValidationError),  # ray-schema.json: worker_ips is an array
    ],
    ids=["missing_head_ip", "unknown_field", "worker_ips_not_list"],
)
def test_cluster_yaml_broken_variant_rejected(
    breakage: Callable[[dict[str, Any]], None], error: type[Exception]
) -> None:
    config = _load_yaml(CLUSTER_YAML)
    breakage(config)
    with pytest.raises(error):
        _bootstrap(config)
