"""Embedded NATS (JetStream) and PostgreSQL for tests and ``tradefleet run``.

Both honour the environment: :func:`nats_server` returns an :class:`ExternalServer` for
``NATS_URL`` and :func:`postgres_server` one for ``DATABASE_URL`` when set, otherwise an
embedded server on a free port. All four classes share one shape: ``start()``, ``stop()``,
``url``, ``embedded``, sync and async context managers::

    with nats_server() as nats, postgres_server() as pg:
        run_components(nats_url=nats.url, database_url=pg.url)

Never the machine's own 4222/5432: embedded servers always bind free ports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from tradefleet.embedded._process import free_port
from tradefleet.embedded.nats_server import EmbeddedNats, nats_server_binary
from tradefleet.embedded.postgres import EmbeddedPostgres, postgres_bin_dir


class ExternalServer:
    """A server someone else runs, named by URL: ``start``/``stop`` do nothing."""

    embedded = False

    def __init__(self, url: str) -> None:
        self.url = url

    def start(self) -> ExternalServer:
        return self

    def stop(self) -> None:
        pass

    def __enter__(self) -> ExternalServer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    async def __aenter__(self) -> ExternalServer:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass


EmbeddedNats.embedded = True  # type: ignore[attr-defined]
EmbeddedPostgres.embedded = True  # type: ignore[attr-defined]


def nats_server(
    env: Mapping[str, str] | None = None, **kwargs: Any
) -> EmbeddedNats | ExternalServer:
    """``ExternalServer(NATS_URL)`` when set, else an unstarted :class:`EmbeddedNats`
    (``kwargs`` go to it). Enter it (or call ``start()``) to get a usable ``url``."""
    url = (os.environ if env is None else env).get("NATS_URL")
    return ExternalServer(url) if url else EmbeddedNats(**kwargs)


def postgres_server(
    env: Mapping[str, str] | None = None, **kwargs: Any
) -> EmbeddedPostgres | ExternalServer:
    """``ExternalServer(DATABASE_URL)`` when set, else an unstarted :class:`EmbeddedPostgres`."""
    url = (os.environ if env is None else env).get("DATABASE_URL")
    return ExternalServer(url) if url else EmbeddedPostgres(**kwargs)


__all__ = [
    "EmbeddedNats",
    "EmbeddedPostgres",
    "ExternalServer",
    "free_port",
    "nats_server",
    "nats_server_binary",
    "postgres_bin_dir",
    "postgres_server",
]
