"""`helm lint --strict` passes for the chart's defaults and for every values set."""

from __future__ import annotations

import pytest

from tests.chart._helm import CHART, VALUES, Helm
from tests.chart.conftest import VALUE_SETS


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_strict_passes(helm: Helm, name: str) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", "trading"]
    for file in VALUE_SETS[name]:
        args += ["-f", str(VALUES / file)]
    proc = helm.run(*args, check=False)
    assert proc.returncode == 0, f"helm lint --strict ({name}):\n{proc.stdout}\n{proc.stderr}"
    assert "0 chart(s) failed" in proc.stdout
