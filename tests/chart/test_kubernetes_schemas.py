"""Every rendered object is valid for the Kubernetes API (1.33, strict: unknown fields are
errors); the custom resources the chart renders have the shape their CRDs expect."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
from pydantic import ValidationError

from tests.chart._helm import KUBE_VERSION, find, one
from tests.chart.conftest import VALUE_SETS
from tradefleet.api import RiskPolicy

CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"),
                ("monitoring.coreos.com/v1", "PodMonitor"),
                ("tradefleet.io/v1alpha1", "RiskPolicy")}


def kubernetes_errors(obj: dict[str, Any]) -> str | None:
    """None when ``obj`` validates strictly against the Kubernetes 1.33 schema, else why."""
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(root)"
        return f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}"
    return None


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_built_in_object_validates_against_kubernetes_schemas(rendered, name) -> None:
    objects = [o for o in rendered(name) if (o["apiVersion"], o["kind"]) not in CUSTOM_KINDS]
    assert objects
    errors = [e for e in map(kubernetes_errors, objects) if e]
    assert not errors, "\n".join(errors)


def test_longest_release_name_keeps_names_within_kubernetes_limits(helm) -> None:
    """Helm allows 53-character release names; object names stay DNS labels of at most 63
    characters and StatefulSet names at most 52 (their pods' controller-revision-hash)."""
    release = "a-very-long-release-name-for-the-trading-fleet-prod1"
    objects = helm.template(sets=("podMonitor.enabled=true", "serviceMonitor.enabled=true"),
                            release=release)
    label = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    for obj in objects:
        name = obj["metadata"]["name"]
        assert label.match(name), f"{obj['kind']}/{name} is not a DNS label of <= 63"
        if obj["kind"] == "StatefulSet":
            assert len(name) <= 52, name
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "truncation made two objects share a name"


def test_schema_check_catches_a_misspelt_field(rendered) -> None:
    deployment = dict(one(rendered("default"), "Deployment", "tradefleet-risk"))
    deployment["spec"] = {**deployment["spec"], "replica": 2}
    assert "replica" in (kubernetes_errors(deployment) or "")


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_only_known_custom_resources_are_rendered(rendered, name) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in rendered(name)}
    unknown = set()
    for api_version, kind in kinds - CUSTOM_KINDS:
        try:
            kubernetes_validate.validate({"apiVersion": api_version, "kind": kind,
                                          "metadata": {"name": "x"}}, KUBE_VERSION)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add((api_version, kind))
        except kubernetes_validate.ValidationError:
            pass
    assert not unknown, f"no schema check for {unknown}: add a shape test"


def test_rendered_risk_policy_is_a_valid_risk_policy(rendered) -> None:
    policy = one(rendered("default"), "RiskPolicy", "default")
    assert policy["metadata"]["namespace"] == "trading"
    try:
        RiskPolicy.model_validate(policy)
    except ValidationError as exc:  # the same models the CRD is generated from
        pytest.fail(f"chart's riskPolicy.spec is not a valid RiskPolicy: {exc}")


def _labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and not present:
            return False
        if expr["operator"] == "DoesNotExist" and present:
            return False
    return True


def test_service_monitor_scrapes_the_risk_service_and_recorder_metrics_ports(rendered) -> None:
    objects = rendered("all-optional")
    monitor = one(objects, "ServiceMonitor", "tradefleet")
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    assert spec["namespaceSelector"] == {"matchNames": ["trading"]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selected = {s["metadata"]["name"]: s for s in find(objects, "Service")
                if _labels_match(spec["selector"], s["metadata"]["labels"])}
    assert set(selected) == {"tradefleet-risk", "tradefleet-recorder"}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"
        for service in selected.values():
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_pod_monitor_selects_the_pods_the_operator_builds(rendered) -> None:
    """The PodMonitor's selector and port match bot and market-data pods exactly as
    tradefleet.operator.builders makes them (so a builder change breaks this test)."""
    from tradefleet.operator.builders import (
        build_deployment,
        build_marketdata_deployment,
        render_bot,
        validate_bot,
    )
    from tradefleet.operator.config import OperatorConfig

    monitor = one(rendered("all-optional"), "PodMonitor", "tradefleet-fleet")
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel"}
    assert sorted(spec["namespaceSelector"]["matchNames"]) == ["bots-a", "bots-b", "trading"]
    config = OperatorConfig()
    body = {"apiVersion": "tradefleet.io/v1alpha1", "kind": "TradingBot",
            "metadata": {"name": "momentum-btc", "namespace": "bots-a", "uid": "u-1"},
            "spec": {"venue": "exsim", "mode": "paper", "symbols": ["BTCUSDT"],
                     "strategy": {"name": "ema_cross", "params": {}}}}
    pods = [build_deployment(render_bot(validate_bot(body), config), body, config),
            build_marketdata_deployment("exsim", ["BTCUSDT"], ["1m"], config)]
    for deployment in pods:
        template = deployment["spec"]["template"]
        assert _labels_match(spec["selector"], template["metadata"]["labels"])
        ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
        assert {e["port"] for e in spec["podMetricsEndpoints"]} <= ports


def test_default_namespace_selector_of_pod_monitor_is_every_namespace(helm) -> None:
    objects = helm.template(sets=("podMonitor.enabled=true",))
    assert one(objects, "PodMonitor", "tradefleet-fleet")["spec"]["namespaceSelector"] == {
        "any": True}
