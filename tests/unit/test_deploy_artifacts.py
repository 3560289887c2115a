"""deploy/ agrees with the code: the alert rules and the Grafana dashboard name only series CTMS exports,
and the Kubernetes manifests pass only settings CTMS reads, with values it accepts.

A rule or a panel on a misspelt or renamed metric never fires and never draws: nothing else would notice.
The exported names come from the real exposition: the API's `GET /metrics` (the app on the in-memory
adapters, right after start-up, when every family exists pre-initialised) and the worker's registry after
one pass and one Acoustic call. Syntax and rule behaviour are promtool's job (scripts/check_deploy.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ctms_core.domain.sync import SyncPassStats
from ctms_core.ports.acoustic import AcousticCall
from ctms_entrypoints.container import build_container, memory_storage
from ctms_entrypoints.http import create_app
from ctms_entrypoints.settings import Settings
from ctms_entrypoints.worker.metrics import BackgroundMetrics
from tests.doubles import PlainHasher
from tests.http_harness import lifespan_task

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
ALERT_RULE_FILES = sorted(MONITORING.glob("*alerts.yaml"))
DASHBOARD_FILES = sorted(MONITORING.glob("*dashboard.json"))

# PromQL words that look like metric names but are not.
_PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan", "atan2"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([a-zA-Z_:][\w:]*)(\s*\()?")
_PATH_TEMPLATE_MATCHER = re.compile(r'path_template\s*=\s*"([^"]*)"')


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects: identifiers that are neither functions, keywords, label
    names (inside `{}` or a grouping clause), durations, nor Grafana variables."""
    text = _STRING.sub('""', expression)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if match.group(2) is None and match.group(1) not in _PROMQL_KEYWORDS
    }


def rule_expressions() -> Iterator[tuple[str, str]]:
    for path in ALERT_RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    for path in DASHBOARD_FILES:
        dashboard: dict[str, Any] = json.loads(path.read_text())
        panels = list(dashboard["panels"])
        while panels:
            panel = panels.pop()
            panels.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                yield f"{path.name}: panel {panel['title']!r}", target["expr"]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]
                query = query["query"] if isinstance(query, dict) else query
                # label_values(METRIC, LABEL) is Grafana's, not PromQL: its metric is the first argument.
                values = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", query)
                yield (
                    f"{path.name}: variable {variable['name']}",
                    values.group(1) if values else query,
                )


def referenced() -> dict[str, set[str]]:
    """Metric name → where the rules and dashboards use it."""
    uses: dict[str, set[str]] = {}
    for where, expression in [*rule_expressions(), *dashboard_expressions()]:
        for name in metric_names(expression):
            uses.setdefault(name, set()).add(where)
    return uses


def sample_names_and_templates(exposition: str) -> tuple[set[str], set[str]]:
    samples = [s for f in text_string_to_metric_families(exposition) for s in f.samples]
    templates = {s.labels["path_template"] for s in samples if "path_template" in s.labels}
    return {s.name for s in samples}, templates


@pytest.fixture
async def api_exposition() -> AsyncIterator[str]:
    container = build_container(
        Settings(secret_key="deploy-artifacts-tests"),
        **memory_storage(),
        password_hasher=PlainHasher(),
    )
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with (
        lifespan_task(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        assert (await http.get("/__lbheartbeat__")).status_code == 200
        response = await http.get("/metrics")
        assert response.status_code == 200
        yield response.text


@pytest.fixture
def worker_exposition() -> str:
    metrics = BackgroundMetrics()
    metrics.acoustic_call(
        AcousticCall(table="main", method="add_recipient", status="failure", duration_s=0.2)
    )
    metrics.contact_done("acoustic", "synced")
    metrics.record_pass(
        SyncPassStats(
            batch_limit=20,
            retry_limit=6,
            end_time="2026-12-06T00:00:00+00:00",
            sync_backlog=3,
            retry_backlog=1,
            age_s=4.0,
        ),
        0.5,
    )
    return generate_latest(metrics.registry).decode()


def test_the_extractor_finds_metric_names_and_nothing_else() -> None:
    expression = """
        histogram_quantile(0.99, sum by (namespace, le) (rate(a_seconds_bucket{path_template!~"/__x__|b"}[5m])))
          > 0.5 and on (pod) deriv((max without (pod) (b_gauge offset 1h))[15m:1m]) > bool 1e3
          or absent(c_total{namespace="$namespace"}) * 60 / sum(rate(d_total[$__rate_interval]))
    """
    assert metric_names(expression) == {"a_seconds_bucket", "b_gauge", "c_total", "d_total"}


def test_every_metric_the_rules_and_dashboards_name_is_exported(
    api_exposition: str, worker_exposition: str
) -> None:
    api_names, _ = sample_names_and_templates(api_exposition)
    worker_names, _ = sample_names_and_templates(worker_exposition)
    uses = referenced()
    # Both processes' metrics are watched; an empty parse would make the check below pass vacuously.
    assert uses.keys() & api_names and uses.keys() & worker_names
    missing = {
        name: sorted(where) for name, where in uses.items() if name not in api_names | worker_names
    }
    assert missing == {}, f"not exported by the API or the worker: {missing}"


def test_every_route_the_rules_and_dashboards_name_exists(api_exposition: str) -> None:
    _, templates = sample_names_and_templates(api_exposition)
    named = {
        (template, where)
        for where, expression in [*rule_expressions(), *dashboard_expressions()]
        for template in _PATH_TEMPLATE_MATCHER.findall(expression)
    }
    assert named, "the rules name no route: the heartbeat and /updates alerts are gone"
    assert {(t, w) for t, w in named if t not in templates} == set()


def test_the_rules_and_the_dashboard_cover_the_failures_that_matter() -> None:
    alerts = {where.split(": ", 1)[1] for where, _ in rule_expressions()}
    assert {
        "CTMSAPIHighErrorRatio",
        "CTMSAPIHighLatencyP99",
        "CTMSHeartbeatFailing",
        "CTMSSyncBacklogGrowing",
        "CTMSSyncWorkerDown",
        "CTMSDatabaseUnavailable",
    } <= alerts
    uses = referenced()
    for family in (
        "ctms_requests_total",
        "ctms_requests_duration_seconds_bucket",
        "ctms_background_acoustic_sync_backlog",
        "ctms_background_acoustic_sync_total",
        "ctms_background_acoustic_sync_retries",
    ):
        assert any("dashboard.json:" in where for where in uses.get(family, ())), family


# --- the Kubernetes settings ---------------------------------------------------------------------------------

KUBERNETES = MONITORING.parent / "kubernetes"
OVERLAY_DIRS = sorted(
    path.parent for path in (KUBERNETES / "overlays").glob("*/kustomization.yaml")
)


def env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return dict(pairs)


def overlay_settings(overlay: Path) -> dict[str, str]:
    """The ConfigMap an overlay generates: the base's env file merged with the overlay's literals."""
    merged = env_file(KUBERNETES / "base" / "ctms.env")
    for generator in yaml.safe_load((overlay / "kustomization.yaml").read_text()).get(
        "configMapGenerator", []
    ):
        merged.update(literal.split("=", 1) for literal in generator.get("literals", []))
    return merged


def base_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) of every workload in the base."""
    for path in sorted((KUBERNETES / "base").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] in {"Deployment", "Job"}:
                pod = document["spec"]["template"]["spec"]
                for container in pod["containers"]:
                    yield pod, container


def test_every_setting_the_manifests_pass_is_one_ctms_reads() -> None:
    known = set(Settings.env_names().values())
    passed = {name for overlay in OVERLAY_DIRS for name in overlay_settings(overlay)}
    passed |= {
        variable["name"] for _, container in base_containers() for variable in container["env"]
    }
    assert OVERLAY_DIRS and passed
    assert passed - known == set()


@pytest.mark.parametrize("overlay", OVERLAY_DIRS, ids=lambda path: path.name)
def test_each_overlays_settings_parse(overlay: Path) -> None:
    secrets = {"CTMS_DB_URL": "postgresql://ctms_app@db:5432/ctms", "CTMS_SECRET_KEY": "k"}
    settings = Settings.from_env({**overlay_settings(overlay), **secrets})
    # Readiness is /__heartbeat__, which a backlog limit would turn into 503 on every API pod at once.
    assert settings.acoustic_max_backlog is None and settings.acoustic_max_retry_backlog is None
    assert settings.background_healthcheck_path is not None


def test_the_worker_heartbeat_file_is_on_a_writable_volume() -> None:
    path = overlay_settings(OVERLAY_DIRS[0])["CTMS_BACKGROUND_HEALTHCHECK_PATH"]
    [(pod, worker)] = [(p, c) for p, c in base_containers() if c["args"] == ["sync"]]
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    writable = {m["mountPath"] for m in worker["volumeMounts"] if m["name"] in empty_dirs}
    assert str(Path(path).parent) in writable
    assert worker["livenessProbe"]["exec"]["command"] == ["ctms", "healthcheck-sync"]
