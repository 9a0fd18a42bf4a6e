"""The local fleet's process supervisor: ready checks, restart of the dead, clean stop."""

import asyncio
import os
import sys

import pytest

from tradefleet.runner.supervisor import ComponentFailed, ComponentSpec, Supervisor

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_component_that_dies_is_reported_and_restarted(tmp_path):
    events = []
    sup = Supervisor(tmp_path, on_event=lambda what, st: events.append((what, st.spec.name)))
    state = await sup.start(ComponentSpec("worker", SLEEPER, ready_grace_s=0.2))
    first_pid = state.process.pid
    state.process.kill()
    for _ in range(100):
        if ("restarted", "worker") in events:
            break
        await asyncio.sleep(0.05)
    assert ("restarting", "worker") in events and ("restarted", "worker") in events
    assert state.restarts == 1 and state.process.pid != first_pid and _alive(state.process.pid)
    await sup.stop()
    assert not _alive(state.process.pid)


async def test_stop_terminates_every_component_and_leaves_no_process(tmp_path):
    sup = Supervisor(tmp_path)
    states = [await sup.start(ComponentSpec(f"c{i}", SLEEPER, ready_grace_s=0.1)) for i in range(3)]
    await sup.stop()
    assert all(s.process.returncode is not None for s in states)
    assert all(s.status == "stopped" for s in states)


async def test_a_component_that_exits_while_starting_fails_with_its_log(tmp_path):
    sup = Supervisor(tmp_path)
    crash = [sys.executable, "-c", "import sys; print('bad config: spec.symbols'); sys.exit(2)"]
    with pytest.raises(ComponentFailed, match=r"exited with code 2.*crash\.log"):
        await sup.start(ComponentSpec("crash", crash, ready_grace_s=2))
    assert "bad config: spec.symbols" in (tmp_path / "crash.log").read_text()
    await sup.stop()


async def test_ready_waits_for_the_health_endpoint(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = [sys.executable, "-c",
              f"import time, http.server; time.sleep(0.5); "
              f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)"
              f".serve_forever()"]
    sup = Supervisor(tmp_path)
    state = await sup.start(ComponentSpec("http", server, ready_url=f"http://127.0.0.1:{port}/",
                                          ready_timeout_s=20))
    assert state.status == "running"
    await sup.stop()


async def test_a_component_past_its_restart_budget_is_marked_failed(tmp_path):
    events = []
    sup = Supervisor(tmp_path, on_event=lambda what, st: events.append(what))
    flaky = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    state = await sup.start(ComponentSpec("flaky", flaky, ready_grace_s=0.1, max_restarts=1))
    for _ in range(100):
        if "failed" in events:
            break
        await asyncio.sleep(0.05)
    assert state.status == "failed" and state.restarts == 1
    await sup.stop()
