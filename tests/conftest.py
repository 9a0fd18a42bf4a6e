"""Root fixtures: real NATS JetStream and real PostgreSQL for every test that asks.

Servers start once per session and only when a test requests them (pytest builds
session fixtures lazily). ``NATS_URL`` / ``DATABASE_URL`` point the suite at running
servers instead; those must be disposable (tests create and drop databases and streams).

==================  ========  ===========================================================
fixture             scope     what it gives
==================  ========  ===========================================================
nats_server         session   ``EmbeddedNats`` (or ``ExternalServer`` for ``NATS_URL``)
nats_url            session   ``nats://127.0.0.1:PORT``
nc                  function  connected nats-py client (drained after the test)
js                  function  JetStreamContext; streams/KV buckets the test created are
                              deleted afterwards, so tests do not see each other's data
bus                 function  ``js`` with MARKET, FLEET, RISK, DLQ and the KV buckets made
make_nats           function  factory for a private ``EmbeddedNats`` (restart/outage tests)
postgres_server     session   ``EmbeddedPostgres`` (or ``ExternalServer``)
database_url        session   ``postgresql://postgres@127.0.0.1:PORT/postgres``
pg_dsn              function  URL of a fresh, empty database dropped after the test
spans               function  InMemorySpanExporter with the spans finished in this test
==================  ========  ===========================================================
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tradefleet.bus.connect import connect
from tradefleet.bus.streams import ensure_kv, ensure_streams
from tradefleet.embedded import EmbeddedNats
from tradefleet.embedded import nats_server as _nats_server
from tradefleet.embedded import postgres_server as _postgres_server
from tradefleet.telemetry.tracing import setup_tracing


@pytest.fixture(scope="session")
def nats_server() -> Iterator[object]:
    server = _nats_server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server) -> str:
    return nats_server.url


@pytest.fixture
async def nc(nats_url: str, request: pytest.FixtureRequest) -> AsyncIterator[object]:
    client = await connect(nats_url, name=f"test:{request.node.name}", connect_deadline_s=10)
    yield client
    if client.is_connected:
        await client.drain()
    else:
        await client.close()


@pytest.fixture
async def js(nc) -> AsyncIterator[object]:
    ctx = nc.jetstream(timeout=10)
    before = {s.config.name for s in await ctx.streams_info()}
    yield ctx
    if nc.is_connected:
        for info in await ctx.streams_info():
            if info.config.name not in before:
                await ctx.delete_stream(info.config.name)


@pytest.fixture
async def bus(js) -> object:
    await ensure_streams(js)
    await ensure_kv(js)
    return js


@pytest.fixture
def make_nats() -> Iterator[Callable[..., EmbeddedNats]]:
    started: list[EmbeddedNats] = []

    def factory(**kwargs) -> EmbeddedNats:
        server = EmbeddedNats(**kwargs).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    server = _postgres_server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server) -> str:
    return postgres_server.url


def _with_dbname(url: str, dbname: str) -> str:
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path="/" + dbname))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


@pytest.fixture
def pg_dsn(database_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_dbname(database_url, name)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_SPANS = InMemorySpanExporter()
_tracing_ready = False


@pytest.fixture
def spans() -> InMemorySpanExporter:
    # OpenTelemetry allows one global provider per process: install it once, then
    # only clear the exporter between tests.
    global _tracing_ready
    if not _tracing_ready:
        setup_tracing("tradefleet-tests", span_exporter=_SPANS)
        _tracing_ready = True
    _SPANS.clear()
    return _SPANS
