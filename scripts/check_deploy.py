#!/usr/bin/env python3
"""Check the deployment artifacts of `deploy/` offline (run by `tox -e lint`):

1. every overlay of `deploy/kubernetes/overlays/` renders with `kubectl kustomize` (kustomize v5, which
   kubectl 1.27 and later embed);
2. every rendered object is valid against the Kubernetes OpenAPI schemas (the `kubernetes-validate`
   package, strict: unknown fields fail) of the oldest and the newest Kubernetes version in
   `KUBERNETES_VERSIONS`; custom resources without a bundled schema (ServiceMonitor) are checked by 3;
3. the objects refer to each other correctly: Services and ServiceMonitors select something and name
   ports that exist, the HPA and the PDB find their Deployment, every ConfigMap reference resolves, and
   every Secret reference names the one documented Secret, and the migrations Job and the objects it needs
   carry the label that deploy/README.md applies before the rollout;
4. `checkov` finds no security misconfiguration in the rendered manifests (accepted findings are skipped
   with a reason, in annotations next to the object, so a reviewer sees them where they apply);
5. `promtool check rules` accepts the alert rules, `promtool test rules` passes their unit tests, and every
   query of the Grafana dashboard parses as PromQL (checked as recording rules by promtool).

`promtool` comes from Debian's `prometheus` package (`.ci/run` installs it when missing); this check fails,
never skips, without it or without kubectl. That the rules and the dashboard name only exported metrics is
a unit test: tests/unit/test_deploy_artifacts.py.

Usage: `python scripts/check_deploy.py`. Exit status 0 when everything passes, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = ROOT / "deploy" / "kubernetes" / "overlays"
MONITORING = ROOT / "deploy" / "monitoring"
ALERT_RULES = sorted(MONITORING.glob("*alerts.yaml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*.test.yaml"))
DASHBOARDS = sorted(MONITORING.glob("*dashboard.json"))

# The oldest Kubernetes release the manifests support (autoscaling/v2, policy/v1, seccompProfile and
# startup probes are all older) and the newest one the installed kubernetes-validate knows.
OLDEST_KUBERNETES = "1.29"
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, kubernetes_validate.latest_version())
MINIMUM_KUSTOMIZE_MAJOR = 5
# Custom resources: no schema ships with kubernetes-validate; the reference checks cover them.
CUSTOM_RESOURCES = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# deploy/README.md applies the objects with this label first, then everything: the migrations Job must find
# every object it refers to among them.
BEFORE_ROLLOUT_LABEL = "ctms.mozilla.org/apply-before-rollout"
# The only Secret the manifests read; created per environment outside this repository.
SECRET_NAME = "ctms-secrets"  # noqa: S105 - a name, not a secret
# Grafana's built-in and dashboard variables, replaced by plausible values before promtool parses a query.
GRAFANA_VARIABLES = {"__rate_interval": "2m", "__interval": "1m", "namespace": "ctms"}

Manifest = dict[str, Any]


class CheckFailed(Exception):
    """A check found problems; the message says which."""


def tool(name: str, hint: str) -> str:
    """The path of `name`, preferring this interpreter's virtualenv; `CheckFailed` with `hint` if absent."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise CheckFailed(f"`{name}` not found: {hint}")
    return found


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, env=env)  # noqa: S603


# --- 1. rendering -----------------------------------------------------------------------------------------


def kubectl() -> str:
    path = tool(
        "kubectl", "the kustomize overlays are rendered with `kubectl kustomize` (kubectl ≥ 1.27)"
    )
    version = run([path, "version", "--client", "--output=json"])
    try:
        kustomize = json.loads(version.stdout)["kustomizeVersion"]
        major = int(re.match(r"v?(\d+)", kustomize).group(1))  # type: ignore[union-attr]
    except (ValueError, KeyError, AttributeError) as error:
        raise CheckFailed(f"cannot read kubectl's kustomize version: {version.stdout!r}") from error
    if major < MINIMUM_KUSTOMIZE_MAJOR:
        raise CheckFailed(
            f"kubectl embeds kustomize {kustomize}; the overlays need v{MINIMUM_KUSTOMIZE_MAJOR} "
            "(kubectl ≥ 1.27)"
        )
    return path


def render(kubectl_path: str, overlay: Path) -> str:
    rendered = run([kubectl_path, "kustomize", str(overlay)])
    if rendered.returncode != 0:
        raise CheckFailed(f"kubectl kustomize {overlay.relative_to(ROOT)}:\n{rendered.stderr}")
    if rendered.stderr.strip():  # deprecation warnings: keep the kustomizations current
        raise CheckFailed(
            f"kubectl kustomize {overlay.relative_to(ROOT)} warned:\n{rendered.stderr}"
        )
    return rendered.stdout


# --- 2. schemas -------------------------------------------------------------------------------------------


def schema_problems(manifests: list[Manifest]) -> Iterator[str]:
    for manifest in manifests:
        kind, api_version = manifest.get("kind"), manifest.get("apiVersion")
        name = manifest.get("metadata", {}).get("name")
        if (api_version, kind) in CUSTOM_RESOURCES:
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                yield f"{kind}/{name} is invalid for Kubernetes {version}: {error.message} at {list(error.path)}"
            except kubernetes_validate.SchemaNotFoundError:
                yield f"{kind}/{name}: Kubernetes {version} has no {api_version} {kind}"


# --- 3. references ----------------------------------------------------------------------------------------


def pod_templates(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for manifest in manifests:
        if manifest["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
            yield f"{manifest['kind']}/{manifest['metadata']['name']}", manifest["spec"]["template"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def reference_problems(manifests: list[Manifest]) -> Iterator[str]:
    by_kind: dict[str, dict[str, Manifest]] = {}
    for manifest in manifests:
        by_kind.setdefault(manifest["kind"], {})[manifest["metadata"]["name"]] = manifest
    templates = list(pod_templates(manifests))
    yield from _service_problems(by_kind, templates)
    yield from _monitor_problems(by_kind)
    yield from _scaling_problems(by_kind)
    yield from before_rollout_problems(manifests, by_kind)
    yield from _environment_problems(set(by_kind.get("ConfigMap", {})), templates)


Templates = list[tuple[str, Manifest]]


def _service_problems(
    by_kind: dict[str, dict[str, Manifest]], templates: Templates
) -> Iterator[str]:
    for name, service in by_kind.get("Service", {}).items():
        selector = service["spec"].get("selector", {})
        chosen = [t for _, t in templates if selects(selector, t["metadata"].get("labels", {}))]
        if not chosen:
            yield f"Service/{name} selects no pod template"
        container_ports = {
            port.get("name")
            for template in chosen
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = port.get("targetPort")
            if isinstance(target, str) and target not in container_ports:
                yield f"Service/{name} targets port {target!r}, which its pods do not declare"


def _monitor_problems(by_kind: dict[str, dict[str, Manifest]]) -> Iterator[str]:
    for name, monitor in by_kind.get("ServiceMonitor", {}).items():
        selector = monitor["spec"]["selector"].get("matchLabels", {})
        services = [
            s
            for s in by_kind.get("Service", {}).values()
            if selects(selector, s["metadata"]["labels"])
        ]
        if not services:
            yield f"ServiceMonitor/{name} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            for service in services:
                if endpoint["port"] not in {p.get("name") for p in service["spec"]["ports"]}:
                    yield (
                        f"ServiceMonitor/{name} scrapes port {endpoint['port']!r}, which "
                        f"Service/{service['metadata']['name']} does not name"
                    )


def _scaling_problems(by_kind: dict[str, dict[str, Manifest]]) -> Iterator[str]:
    deployments = by_kind.get("Deployment", {})
    for name, autoscaler in by_kind.get("HorizontalPodAutoscaler", {}).items():
        target = autoscaler["spec"]["scaleTargetRef"]
        if target["kind"] != "Deployment" or target["name"] not in deployments:
            yield f"HorizontalPodAutoscaler/{name} scales a missing {target['kind']}/{target['name']}"
        elif "replicas" in deployments[target["name"]]["spec"]:
            yield f"Deployment/{target['name']} sets replicas, which would reset its autoscaler's count"
    for name, budget in by_kind.get("PodDisruptionBudget", {}).items():
        selector = budget["spec"]["selector"].get("matchLabels", {})
        if not any(
            selects(selector, d["spec"]["template"]["metadata"]["labels"])
            for d in deployments.values()
        ):
            yield f"PodDisruptionBudget/{name} selects no Deployment"


def _environment_problems(config_maps: set[str], templates: Templates) -> Iterator[str]:
    for owner, template in templates:
        for container in template["spec"]["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef")
                if ref and ref["name"] not in config_maps:
                    yield f"{owner} reads a missing ConfigMap {ref['name']!r}"
                if source.get("secretRef"):
                    yield f"{owner} imports a whole Secret; name each key with secretKeyRef"
            for variable in container.get("env", []):
                value_from = variable.get("valueFrom", {})
                if (
                    "configMapKeyRef" in value_from
                    and value_from["configMapKeyRef"]["name"] not in config_maps
                ):
                    yield f"{owner} reads a missing ConfigMap for {variable['name']}"
                secret = value_from.get("secretKeyRef")
                if secret and secret["name"] != SECRET_NAME:
                    yield f"{owner} reads Secret {secret['name']!r}; the documented one is {SECRET_NAME!r}"


def before_rollout_problems(
    manifests: list[Manifest], by_kind: dict[str, dict[str, Manifest]]
) -> Iterator[str]:
    def early(kind: str, name: str) -> bool:
        labels = by_kind.get(kind, {}).get(name, {}).get("metadata", {}).get("labels", {})
        return labels.get(BEFORE_ROLLOUT_LABEL) == "true"

    jobs = [m for m in manifests if m["kind"] == "Job"]
    if not any(early("Job", job["metadata"]["name"]) for job in jobs):
        yield f"no Job carries {BEFORE_ROLLOUT_LABEL}=true: the release order of deploy/README.md breaks"
    for job in jobs:
        name = job["metadata"]["name"]
        if not early("Job", name):
            continue
        pod = job["spec"]["template"]["spec"]
        needed = [("ServiceAccount", pod.get("serviceAccountName", "default"))]
        needed += [
            ("ConfigMap", source["configMapRef"]["name"])
            for container in pod["containers"]
            for source in container.get("envFrom", [])
            if "configMapRef" in source
        ]
        for kind, needed_name in needed:
            if needed_name in by_kind.get(kind, {}) and not early(kind, needed_name):
                yield f"Job/{name} needs {kind}/{needed_name}, which lacks {BEFORE_ROLLOUT_LABEL}=true"


# --- 4. checkov -------------------------------------------------------------------------------------------


def checkov_problems(rendered_dir: Path) -> Iterator[str]:
    path = tool("checkov", "it is in the `deploy-lint` dependency group (tox -e lint installs it)")
    # Offline: --skip-download and BC_SKIP_MAPPING keep checkov from calling its vendor's service.
    options = ["--framework", "kubernetes", "--compact", "--quiet", "--skip-download"]
    result = run(
        [path, "--directory", str(rendered_dir), *options],
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    if result.returncode != 0:
        yield f"checkov found problems:\n{result.stdout}{result.stderr}"


# --- 5. rules and dashboards ------------------------------------------------------------------------------


def promtool() -> str:
    return tool(
        "promtool",
        "install Debian's `prometheus` package (`apt-get install prometheus`; .ci/run does it when missing)",
    )


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL expression) of every panel target, with Grafana's variables replaced."""
    panels = list(dashboard.get("panels", []))
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            expression = re.sub(
                r"\$\{?(\w+)\}?",
                lambda m: GRAFANA_VARIABLES.get(m.group(1), m.group(0)),
                target["expr"],
            )
            yield f"panel {panel['id']} ({panel['title']}) target {target['refId']}", expression


def dashboard_problems(path: Path) -> Iterator[str]:
    dashboard = json.loads(path.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        yield f"{path.name}: panel ids repeat"
    for panel in dashboard["panels"]:
        if panel["type"] != "row" and not panel.get("targets"):
            yield f"{path.name}: panel {panel['title']!r} has no query"
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") != "${datasource}":
                yield f"{path.name}: panel {panel['title']!r} does not use the $datasource variable"
    queries = list(dashboard_queries(dashboard))
    leftover = [where for where, expression in queries if "$" in expression]
    if leftover:
        yield f"{path.name}: unknown Grafana variables in {leftover}"
        return
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": expression}
                    for index, (_, expression) in enumerate(queries)
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(rules, file)
        file.flush()
        result = run([promtool(), "check", "rules", file.name])
    if result.returncode != 0:
        output = result.stdout + result.stderr
        failing = sorted({int(index) for index in re.findall(r"dashboard:query_(\d+)", output)})
        places = "; ".join(f"{queries[index][0]}: {queries[index][1]}" for index in failing)
        yield f"{path.name}: queries that do not parse: {places or output}"


def rules_problems() -> Iterator[str]:
    if not ALERT_RULES or not RULE_TESTS:
        yield "deploy/monitoring has no alert rules or no rule tests"
        return
    checked = run([promtool(), "check", "rules", *map(str, ALERT_RULES)])
    if checked.returncode != 0:
        yield f"promtool check rules:\n{checked.stdout}{checked.stderr}"
    tested = run([promtool(), "test", "rules", *map(str, RULE_TESTS)])
    if tested.returncode != 0:
        yield f"promtool test rules:\n{tested.stdout}{tested.stderr}"


# --- main -------------------------------------------------------------------------------------------------


def kubernetes_problems(overlays: list[Path]) -> Iterator[str]:
    kubectl_path = kubectl()
    with tempfile.TemporaryDirectory(prefix="ctms-rendered-") as directory:
        for overlay in overlays:
            text = render(kubectl_path, overlay)
            (Path(directory) / f"{overlay.name}.yaml").write_text(text)
            manifests = [doc for doc in yaml.safe_load_all(text) if doc]
            yield from (f"{overlay.name}: {p}" for p in schema_problems(manifests))
            yield from (f"{overlay.name}: {p}" for p in reference_problems(manifests))
            print(f"check_deploy: {overlay.name}: {len(manifests)} objects rendered and checked")
        yield from checkov_problems(Path(directory))


def main() -> int:
    overlays = sorted(path.parent for path in OVERLAYS.glob("*/kustomization.yaml"))
    problems: list[str] = [] if overlays else ["no overlay found under deploy/kubernetes/overlays"]
    checks = [lambda: kubernetes_problems(overlays), rules_problems]
    checks += [lambda path=path: dashboard_problems(path) for path in DASHBOARDS]
    for check in checks:
        try:
            problems += check()
        except CheckFailed as failure:
            problems.append(str(failure))
    if problems:
        print("check_deploy: FAILED", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(
        f"check_deploy: {len(overlays)} overlays (Kubernetes {', '.join(KUBERNETES_VERSIONS)}, "
        f"checkov), {len(ALERT_RULES)} rule file(s) with {len(RULE_TESTS)} test file(s), "
        f"{len(DASHBOARDS)} dashboard(s): OK"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
