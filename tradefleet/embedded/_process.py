"""Process and port helpers shared by the embedded servers."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (bind to 0, read, release).

    Another process may take it before the caller binds: callers that cannot pass port 0
    to the server retry on "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stop_process(
    proc: subprocess.Popen,
    *,
    sig: int = signal.SIGTERM,
    timeout_s: float = 10.0,
    name: str = "process",
) -> int:
    """Send ``sig``, wait up to ``timeout_s``, then SIGKILL; return the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning(
            "%s (pid %d) ignored %s for %.0fs; killing it",
            name,
            proc.pid,
            signal.Signals(sig).name,
            timeout_s,
        )
        proc.kill()
        return proc.wait(timeout=timeout_s)


def tail(path: Path, lines: int = 30) -> str:
    """Last ``lines`` lines of a log file, for error messages ('' when missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ServerContext:
    """``with`` / ``async with`` support for a server with ``start()`` and ``stop()``.

    ``__aenter__``/``__aexit__`` run the blocking start and stop in a thread so an event
    loop keeps serving while the server boots or shuts down.
    """

    def start(self):  # pragma: no cover - provided by the server class
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - provided by the server class
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, et, e, tb) -> None:
        self.stop()

    async def __aenter__(self):
        import asyncio

        return await asyncio.to_thread(self.start)

    async def __aexit__(self, et, e, tb) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)
