"""The Grafana dashboards are valid dashboard JSON, read only metrics and labels the code
exports, and reach Grafana as ConfigMaps its sidecar picks up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.chart._helm import CHART, ROOT, find
from tests.chart._promql import exported_series, grouping_labels, problems, selectors

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
CODE = [ROOT / "workers", ROOT / "exsim", ROOT / "operator", ROOT / "tradefleet"]
SEED_METRICS = {"bot_up", "order_latency_ms", "pnl_day_usdt", "ws_uptime", "ingest_rate",
                "order_reject_rate", "pnl_realized", "pnl_unrealized"}


@pytest.fixture(scope="module")
def series() -> dict[str, set[str]]:
    return exported_series(CODE)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows hold their panels
    return out


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and query variable."""
    out = [(f"{dashboard['uid']}/{p['title']}/{t['refId']}", t["expr"])
           for p in _panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            out.append((f"{dashboard['uid']}/${var['name']}", query))
    return out


def test_there_are_a_fleet_overview_and_a_bot_detail_dashboard() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {"tradefleet / Fleet overview", "tradefleet / Bot detail"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_grafana_dashboard_json(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard or dashboard["id"] is None  # Grafana assigns ids
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels:
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["title"] and p["targets"], f"panel {p['id']} needs a title and targets"
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_dashboards_have_distinct_uids() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_reads_metrics_and_labels_the_code_exports(path, series) -> None:
    found = []
    for where, expr in _queries(json.loads(path.read_text())):
        found += [f"{where}: {p}" for p in problems(expr, series)]
    assert not found, "\n".join(found)


def test_dashboards_show_every_seed_metric() -> None:
    used = {metric.removesuffix("_bucket") for path in DASHBOARDS
            for _, expr in _queries(json.loads(path.read_text()))
            for metric, _ in selectors(expr)}
    assert SEED_METRICS <= used, f"not on any dashboard: {sorted(SEED_METRICS - used)}"


def test_seed_metrics_are_exported_by_the_code(series) -> None:
    histogram = "order_latency_ms"  # scraped as order_latency_ms_bucket/_sum/_count
    assert (SEED_METRICS - {histogram}) | {f"{histogram}_bucket"} <= set(series)


# --- the checker itself must be able to fail -------------------------------------------
def test_checker_reports_a_metric_the_code_does_not_export(series) -> None:
    assert problems('sum(bot_upp{bot=~"$bot"})', series) == [
        "'sum(bot_upp{bot=~\"$bot\"})': metric bot_upp is not exported by the code"]


def test_checker_reports_a_label_the_metric_does_not_have(series) -> None:
    found = problems('pnl_day_usdt{symbol="BTCUSDT"}', series)
    assert len(found) == 1 and "has no label ['symbol']" in found[0]


def test_checker_reports_grouping_by_a_label_no_metric_has(series) -> None:
    found = problems("sum by (venue) (pnl_realized)", series)
    assert len(found) == 1 and "grouping by ['venue']" in found[0]


def test_checker_knows_prometheus_client_naming(series) -> None:
    """Counter ``orders`` is scraped as ``orders_total``; Histograms add ``_bucket`` + le."""
    assert "orders_total" in series and "orders" not in series
    assert "le" in series["order_latency_ms_bucket"]
    expr = ("histogram_quantile(0.99, sum by (le, purpose) "
            "(rate(order_latency_ms_bucket{bot=\"$bot\"}[$__rate_interval])))")
    assert selectors(expr) == [("order_latency_ms_bucket", {"bot"})]
    assert grouping_labels(expr) == {"le", "purpose"}
    assert problems(expr, series) == []


def test_dashboards_render_as_configmaps_the_grafana_sidecar_picks_up(rendered) -> None:
    maps = [m for m in find(rendered("all-optional"), "ConfigMap")
            if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert {m["metadata"]["namespace"] for m in maps} == {"monitoring"}
    assert {m["metadata"]["annotations"]["grafana_folder"] for m in maps} == {"Trading"}
    shipped = {key: json.loads(text) for m in maps for key, text in m["data"].items()}
    assert shipped == {p.name: json.loads(p.read_text()) for p in DASHBOARDS}


def test_dashboards_can_be_switched_off(rendered) -> None:
    assert not [m for m in find(rendered("bundled-options"), "ConfigMap")
                if "grafana_dashboard" in m["metadata"]["labels"]]
