"""Operating the risk service: /metrics, /healthz, and the ``tradefleet risk`` commands."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import time

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.telemetry.metrics import serve_metrics
from tradefleet.telemetry.tracing import get_tracer, setup_tracing
from tradefleet.workers.risk.locks import PoolLocks
from tradefleet.workers.risk.protocol import Outcome
from tests.workers._risk import check, risk  # noqa: F401 - fixture

POLICY_YAML = textwrap.dedent("""\
    apiVersion: tradefleet.io/v1alpha1
    kind: RiskPolicy
    metadata: {name: fleet, namespace: default}
    spec:
      perSymbolCapUsdt: 500
      totalCapUsdt: 1500
      correlationClusters:
        - {name: majors, symbols: [BTCUSDT, ETHUSDT], capUsdt: 800}
""")
CLI = [sys.executable, "-c", "from tradefleet.cli import app; app()"]


async def test_metrics_show_decisions_by_outcome_exposure_and_check_latency(risk):
    policy = RiskPolicySpec.model_validate({
        "perSymbolCapUsdt": 500, "totalCapUsdt": 1500,
        "correlationClusters": [{"name": "majors", "symbols": ["BTCUSDT", "ETHUSDT"]}]})
    svc = await risk.service(policy)
    server = await serve_metrics(svc.registry, svc.health, port=0, host="127.0.0.1")
    try:
        bot = await risk.client()
        await bot.check(check(notional="400"))
        await bot.check(check(notional="400"))
        async with httpx.AsyncClient() as http:
            text = (await http.get(server.url + "/metrics")).text
    finally:
        await server.stop()
    assert "risk_checks_total 2.0" in text
    assert 'risk_decisions_total{outcome="allow"} 1.0' in text
    assert 'risk_decisions_total{outcome="block"} 1.0' in text
    assert 'risk_exposure_usdt{name="BTCUSDT",scope="symbol"} 400.0' in text
    assert 'risk_exposure_usdt{name="majors",scope="cluster"} 400.0' in text
    assert "risk_check_latency_seconds_count 2.0" in text


async def test_healthz_and_readyz_pass_while_the_service_runs(risk):
    svc = await risk.service(RiskPolicySpec())
    server = await serve_metrics(svc.registry, svc.health, port=0, host="127.0.0.1")
    try:
        async with httpx.AsyncClient() as http:
            live = await http.get(server.url + "/healthz")
            ready = await http.get(server.url + "/readyz")
    finally:
        await server.stop()
    assert (live.status_code, ready.status_code) == (200, 200)


def _wait_for_port(proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """Read the JSON log lines on stderr until the service says it serves."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"tradefleet risk exited with {proc.wait()}")
        record = json.loads(line)
        if record["msg"] == "risk service serving":
            return int(record["metrics_port"])
    raise AssertionError("tradefleet risk did not start in time")


async def test_cli_serves_checks_under_the_policy_file(risk, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_YAML)
    proc = subprocess.Popen([*CLI, "risk", "--policy", str(policy), "--nats-url", risk.nats_url,
                             "--metrics-port", "0"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LOG_LEVEL": "INFO"})
    try:
        port = await asyncio.to_thread(_wait_for_port, proc)
        bot = await risk.client()
        allowed = await bot.check(check(notional="500"))
        blocked = await bot.check(check(symbol="ETHUSDT", notional="400"))
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 15) == 0
    assert allowed.outcome is Outcome.ALLOW
    assert blocked.outcome is Outcome.BLOCK and "cluster majors" in blocked.reason
    assert health.status_code == 200


def test_cli_refuses_a_bad_policy_file_naming_the_field(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_YAML.replace("totalCapUsdt: 1500", "totalCapUsdt: -1"))
    out = subprocess.run([*CLI, "risk", "--policy", str(policy), "--nats-url", "nats://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert re.search(r"spec\.totalCapUsdt: Input should be greater than 0", out.stderr)


async def test_risk_lock_cli_grants_a_pool_lock(risk):
    out = await asyncio.to_thread(subprocess.run, [*CLI, "risk-lock", "grant", "mm", "--bot",
                                                   "default/a", "--nats-url", risk.nats_url],
                                  capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "lock granted to default/a" in out.stdout
    assert (await (await PoolLocks.open(risk.js)).holder("mm")).holder == "default/a"


async def test_check_span_joins_the_bots_trace_over_nats(risk):
    exporter = InMemorySpanExporter()
    setup_tracing("tradefleet-test", span_exporter=exporter)
    try:
        await risk.service(RiskPolicySpec())
        bot = await risk.client()
        with get_tracer("bot").start_as_current_span("signal") as signal:
            await bot.check(check())
        await asyncio.sleep(0.05)
        spans = [s for s in exporter.get_finished_spans() if s.name == "risk.check"]
    finally:
        exporter.shutdown()  # the global provider keeps its processor; stop collecting
    assert [s.context.trace_id for s in spans] == [signal.get_span_context().trace_id]
    assert spans[0].parent.span_id == signal.get_span_context().span_id
    assert spans[0].attributes["risk.outcome"] == "allow"
