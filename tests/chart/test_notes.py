"""The install notes tell a user how to apply bots, watch them and reach exsim and Grafana
(rendered by `helm install --dry-run=client`, no cluster needed)."""

from __future__ import annotations

import re

import yaml

from tests.chart._helm import CHART, NAMESPACE, RELEASE, ROOT, VALUES, Helm
from tradefleet.api import status as st


def _notes(helm: Helm, *values: str) -> str:
    args = ["install", RELEASE, str(CHART), "--dry-run=client", "--namespace", NAMESPACE]
    for name in values:
        args += ["-f", str(VALUES / name)]
    out = helm.run(*args).stdout
    return out[out.index("NOTES:"):]


def test_notes_show_how_to_apply_wait_for_and_list_bots(helm) -> None:
    notes = _notes(helm)
    assert f"kubectl wait --for=condition={st.READY} tradingbot --all" in notes
    assert "kubectl get tradingbots" in notes
    assert "--type merge -p '{\"spec\":{\"paused\":true}}'" in notes
    for path in re.findall(r"-f (examples/\S+\.yaml)", notes):
        doc = yaml.safe_load((ROOT / path).read_text())
        assert doc["kind"] == "TradingBot", path


def test_notes_show_how_to_reach_exsim_and_grafana(helm) -> None:
    notes = _notes(helm)
    assert f"port-forward svc/{RELEASE}-exsim 9010:9010" in notes
    assert "port-forward svc/kube-prometheus-stack-grafana" in notes
    assert "grafana_dashboard=1" in notes


def test_notes_leave_out_what_is_not_installed(helm) -> None:
    notes = _notes(helm, "all-optional.yaml")
    assert "exsim" not in notes.split("Components:")[1].splitlines()[0]
    assert "port-forward svc/tradefleet-exsim" not in notes
    assert "NATS: nats://nats.messaging.svc:4222" in notes
    assert "No RiskPolicy was created" in notes
