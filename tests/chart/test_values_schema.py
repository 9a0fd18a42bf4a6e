"""values.schema.json refuses bad values before anything is rendered, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart._helm import Helm


def _refusal(helm: Helm, tmp_path: Path, text: str) -> str:
    values = tmp_path / "values.yaml"
    values.write_text(text)
    proc = helm.run(*helm.template_args(), "-f", str(values), check=False)
    assert proc.returncode != 0, f"helm accepted:\n{text}"
    assert "kind:" not in proc.stdout  # nothing rendered
    return proc.stderr


def test_string_replica_count_is_refused_naming_the_field(helm, tmp_path) -> None:
    err = _refusal(helm, tmp_path, "risk:\n  replicas: two\n")
    assert "/risk/replicas" in err and "want integer" in err


def test_misspelt_key_is_refused_naming_it(helm, tmp_path) -> None:
    err = _refusal(helm, tmp_path, "exsim:\n  sped: 50\n")
    assert "/exsim" in err and "'sped' not allowed" in err


def test_unknown_top_level_section_is_refused(helm, tmp_path) -> None:
    err = _refusal(helm, tmp_path, "redis:\n  enabled: true\n")
    assert "'redis' not allowed" in err


def test_external_nats_without_url_is_refused(helm, tmp_path) -> None:
    err = _refusal(helm, tmp_path, "nats:\n  enabled: false\n")
    assert "/nats/url" in err


def test_external_database_without_url_or_secret_is_refused(helm, tmp_path) -> None:
    err = _refusal(helm, tmp_path, "timescaledb:\n  enabled: false\n")
    assert "/database/url" in err and "/database/existingSecret" in err


def test_external_database_is_optional_without_the_recorder(helm) -> None:
    objects = helm.template(sets=("timescaledb.enabled=false", "recorder.enabled=false"))
    assert not [o for o in objects if "recorder" in o["metadata"]["name"]]


@pytest.mark.parametrize("text, field", [
    ("logLevel: verbose\n", "/logLevel"),
    ("nats:\n  jetstream:\n    maxFileStore: 8Gi\n", "/nats/jetstream/maxFileStore"),
    ("exsim:\n  nodePort: 8080\n", "/exsim/nodePort"),
    ("exsim:\n  initialBalance: ten thousand\n", "/exsim/initialBalance"),
    ("operator:\n  resources:\n    requests:\n      cpu: lots\n",
     "/operator/resources/requests/cpu"),
    ("serviceMonitor:\n  interval: 30\n", "/serviceMonitor/interval"),
    ("image:\n  pullPolicy: Sometimes\n", "/image/pullPolicy"),
])
def test_bad_value_is_refused_naming_the_field(helm, tmp_path, text, field) -> None:
    assert field in _refusal(helm, tmp_path, text)
