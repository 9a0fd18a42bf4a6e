"""The chart's copies of generated data equal their sources (`make chart` syncs them)."""

from __future__ import annotations

import importlib.util

from tests.chart._helm import CHART, ROOT


def _sync_chart():
    spec = importlib.util.spec_from_file_location("_sync_chart", ROOT / "scripts" / "sync_chart.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_chart_crds_are_byte_for_byte_the_repository_crds() -> None:
    source = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert source, "crds/ is empty"
    assert copies == source, "charts/tradefleet/crds differs from crds/: run `make chart`"


def test_chart_rbac_file_is_generated_from_the_operator_rules() -> None:
    sync = _sync_chart()
    assert sync.RBAC_FILE.read_text() == sync.rbac_text(), "run `make chart`"


def test_sync_check_reports_a_drifted_copy(tmp_path, monkeypatch) -> None:
    sync = _sync_chart()
    chart = tmp_path / "charts" / "tradefleet"
    (chart / "crds").mkdir(parents=True)
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "a.yaml").write_text("kind: CustomResourceDefinition\n")
    (chart / "crds" / "a.yaml").write_text("kind: CustomResourceDefinition # edited\n")
    (chart / "crds" / "old.yaml").write_text("stale\n")
    for name, value in {"ROOT": tmp_path, "CHART": chart, "CRDS": tmp_path / "crds",
                        "RBAC_FILE": chart / "files" / "operator-rbac.yaml"}.items():
        monkeypatch.setattr(sync, name, value)
    assert sync.main(["--check"]) == 1
    assert sorted(sync.stale(sync.wanted())) == [
        "charts/tradefleet/crds/a.yaml", "charts/tradefleet/crds/old.yaml (no source in crds/)",
        "charts/tradefleet/files/operator-rbac.yaml"]
    assert sync.main([]) == 0
    assert sync.stale(sync.wanted()) == []
    assert not (chart / "crds" / "old.yaml").exists()
