"""Supervise component processes: start in order, wait until ready, restart the dead.

Each component is a child process (``tradefleet exsim``, ``tradefleet bot ...``) with its
output in its own log file, so the terminal stays free for the live view. A component that
exits while the fleet runs is reported and restarted with exponential backoff (1 s, 2 s,
4 s … capped at 30 s) up to ``max_restarts`` times; then it is marked failed and the
supervisor carries on with the rest (a dead bot must not take the fleet down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

log = logging.getLogger("tradefleet.runner.supervisor")


@dataclass
class ComponentSpec:
    """How to run one component.

    argv: the command line (``[sys.executable, "-m", "tradefleet.cli", ...]`` or a script);
    env: extra environment (merged over the parent's; put secrets only here, never in argv);
    ready_url: an HTTP URL answering 200 once the component is ready (``/healthz``), or
    None to treat "still running after ``ready_grace_s``" as ready.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    ready_timeout_s: float = 60.0
    ready_grace_s: float = 0.5
    restart: bool = True
    max_restarts: int = 5


@dataclass
class ComponentState:
    """What the supervisor knows of a component, for the live view and the report."""

    spec: ComponentSpec
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    status: str = "pending"  # pending, starting, running, restarting, failed, stopped, exited
    last_exit: int | None = None
    started_at: float = 0.0
    log_path: pathlib.Path | None = None


class ComponentFailed(RuntimeError):
    """A component did not become ready; the message says which and where its log is."""


def tradefleet_argv(*args: str) -> list[str]:
    """argv running the ``tradefleet`` CLI with this interpreter (works in any virtualenv)."""
    return [sys.executable, "-m", "tradefleet.cli", *args]


class Supervisor:
    """Start components in order, restart those that die, stop them all in reverse order."""

    def __init__(self, log_dir: pathlib.Path,
                 on_event: Callable[[str, ComponentState], None] | None = None):
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.components: dict[str, ComponentState] = {}
        self._watchers: dict[str, asyncio.Task] = {}
        self._stopping = False
        self._on_event = on_event or (lambda what, state: None)

    async def _spawn(self, state: ComponentState) -> None:
        spec = state.spec
        state.log_path = self.log_dir / f"{spec.name}.log"
        logfile = open(state.log_path, "ab", buffering=0)  # noqa: SIM115 - owned by the child
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        state.process = await asyncio.create_subprocess_exec(
            *spec.argv, stdout=logfile, stderr=asyncio.subprocess.STDOUT, env=env,
            start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        )
        logfile.close()
        state.started_at = time.monotonic()
        state.status = "starting"

    async def _wait_ready(self, state: ComponentState) -> None:
        spec, proc = state.spec, state.process
        deadline = time.monotonic() + spec.ready_timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    raise ComponentFailed(
                        f"{spec.name} exited with code {proc.returncode} while starting; "
                        f"see {state.log_path}")
                if spec.ready_url is None:
                    if time.monotonic() - state.started_at >= spec.ready_grace_s:
                        return
                else:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(spec.ready_url)).status_code == 200:
                            return
                await asyncio.sleep(0.1)
        raise ComponentFailed(f"{spec.name} not ready after {spec.ready_timeout_s:.0f} s "
                              f"({spec.ready_url}); see {state.log_path}")

    async def start(self, spec: ComponentSpec) -> ComponentState:
        """Start ``spec`` and wait until it is ready; raises ComponentFailed (process killed)."""
        state = ComponentState(spec)
        self.components[spec.name] = state
        await self._spawn(state)
        try:
            await self._wait_ready(state)
        except ComponentFailed:
            state.status = "failed"
            await self._terminate(state)
            raise
        state.status = "running"
        log.info("component started", extra={"component": spec.name, "pid": state.process.pid})
        self._on_event("started", state)
        self._watchers[spec.name] = asyncio.create_task(self._watch(state), name=f"watch:{spec.name}")
        return state

    async def _watch(self, state: ComponentState) -> None:
        spec = state.spec
        while not self._stopping:
            code = await state.process.wait()
            state.last_exit = code
            if self._stopping:
                return
            if not spec.restart or state.restarts >= spec.max_restarts:
                state.status = "failed" if spec.restart or code != 0 else "exited"
                log.error("component died and will not be restarted", extra={
                    "component": spec.name, "exit_code": code, "restarts": state.restarts,
                    "log": str(state.log_path), "action": "read the log above for the cause"})
                self._on_event("failed" if state.status == "failed" else "exited", state)
                return
            state.restarts += 1
            state.status = "restarting"
            delay = min(30.0, 2.0 ** (state.restarts - 1))
            log.warning("component died; restarting", extra={
                "component": spec.name, "exit_code": code, "restart": state.restarts,
                "delay_s": delay, "log": str(state.log_path)})
            self._on_event("restarting", state)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            await self._spawn(state)
            try:
                await self._wait_ready(state)
            except ComponentFailed as exc:
                log.error(str(exc), extra={"component": spec.name})
                continue
            state.status = "running"
            self._on_event("restarted", state)

    async def _terminate(self, state: ComponentState, timeout_s: float = 10.0) -> None:
        proc = state.process
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except asyncio.TimeoutError:
            log.warning("component ignored SIGTERM; killing it",
                        extra={"component": state.spec.name, "timeout_s": timeout_s})
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def stop(self, name: str | None = None, timeout_s: float = 10.0) -> None:
        """Stop one component, or all in reverse start order (SIGTERM, then SIGKILL)."""
        if name is not None:
            state = self.components[name]
            task = self._watchers.pop(name, None)
            if task:
                task.cancel()
            await self._terminate(state, timeout_s)
            state.status = "stopped"
            return
        self._stopping = True
        for task in self._watchers.values():
            task.cancel()
        for state in reversed(list(self.components.values())):
            await self._terminate(state, timeout_s)
            state.status = "stopped"
        self._watchers.clear()
