"""The recorder loses and duplicates nothing: crashes, database outages, poison messages.

Real NATS JetStream and real PostgreSQL; the outage test runs its own PostgreSQL server so
it can stop it and start it again on the same data directory and port.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from tradefleet.bus import codec, subjects
from tradefleet.bus.fleet_messages import FillMsg, fill_msg_id
from tradefleet.bus.publish import publish
from tradefleet.embedded import EmbeddedPostgres
from tradefleet.workers.recorder import Recorder
from tests.workers._recorder import (
    T0,
    count,
    kline,
    metric,
    publish_klines,
    recorder_config,
    rows,
    running,
    wait_ready,
    wait_rows,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")


async def test_recorder_killed_mid_stream_then_restarted_loses_and_duplicates_no_row(
        bus, nats_url, pg_dsn):
    bodies = [kline(s, i) for i in range(1000) for s in SYMBOLS]  # 5,000 klines
    await publish_klines(bus, bodies)
    config = recorder_config(nats_url, pg_dsn, batch_size=250, ack_wait_s=2, flush_ms=5)

    first = Recorder(config)
    task = asyncio.create_task(first.run())
    await wait_ready(first)
    deadline = time.monotonic() + 60
    while await count(pg_dsn, "bars") < 1000:  # some batches committed, later ones in flight
        assert time.monotonic() < deadline, "the first recorder committed nothing in 60 s"
        await asyncio.sleep(0.005)
    held_at_crash = first.queue.held
    task.cancel()  # a crash: no flush, no acks for what was not committed
    done, _ = await asyncio.wait([task], timeout=30)
    assert done, "the cancelled recorder did not end within 30 s"
    assert task.cancelled()
    at_crash = await count(pg_dsn, "bars")
    assert at_crash < len(bodies), "the crash came too late to interrupt anything"
    assert held_at_crash > 0, "nothing was in flight at the crash"

    async with running(config) as second:
        await wait_rows(pg_dsn, "bars", len(bodies), timeout_s=60)
        await asyncio.sleep(0.5)  # any straggling redelivery must not add rows
    assert await count(pg_dsn, "bars") == len(bodies)
    # A commit the crash interrupted may have landed without being counted, so the two
    # recorders together counted at most every row once (a second insert is impossible:
    # the primary key is the kline's natural key and the insert skips conflicts).
    written = (metric(first, "recorder_rows_written_total", table="bars")
               + metric(second, "recorder_rows_written_total", table="bars"))
    assert len(bodies) - 2 * config.batch_size <= written <= len(bodies)
    per_symbol = await rows(pg_dsn, "SELECT symbol, count(*), min(open_time_ms), "
                            "max(open_time_ms) FROM bars GROUP BY symbol ORDER BY symbol")
    assert per_symbol == [(s, 1000, T0, T0 + 999 * 60_000) for s in sorted(SYMBOLS)]


async def test_two_recorders_started_at_once_share_the_stream_and_store_each_bar_once(
        bus, nats_url, pg_dsn):
    bodies = [kline(s, i) for i in range(400) for s in SYMBOLS]  # 2,000 klines
    await publish_klines(bus, bodies)
    config = recorder_config(nats_url, pg_dsn, batch_size=100, flush_ms=5)
    # Both start at once on an empty database: they race to migrate it (advisory lock),
    # then pull from the same durable consumers.
    recorders = [Recorder(config), Recorder(config)]
    tasks = [asyncio.create_task(r.run()) for r in recorders]
    try:
        await asyncio.gather(*(wait_ready(r) for r in recorders))
        await wait_rows(pg_dsn, "bars", len(bodies))
        await asyncio.sleep(0.3)
    finally:
        for r in recorders:
            await r.stop()
        await asyncio.gather(*tasks)
    written = [metric(r, "recorder_rows_written_total", table="bars") for r in recorders]
    assert sum(written) == len(bodies) == await count(pg_dsn, "bars")


@pytest.fixture
def private_postgres():
    """A PostgreSQL server on a durable data dir, restartable on the same port."""
    work = Path(tempfile.mkdtemp(prefix="tf-rec-pg-"))
    os.chmod(work, 0o755)  # PostgreSQL runs as a non-root user when the tests run as root
    servers: list[EmbeddedPostgres] = []

    def start(port: int = 0) -> EmbeddedPostgres:
        server = EmbeddedPostgres(port=port, data_dir=work / "data").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    shutil.rmtree(work, ignore_errors=True)


async def test_postgres_down_for_10_seconds_loses_nothing(bus, nats_url, private_postgres):
    pg = await asyncio.to_thread(private_postgres)
    url, port = pg.url, pg.port
    config = recorder_config(nats_url, url, batch_size=100, queue_capacity=200, ack_wait_s=3)
    before = [kline("BTCUSDT", i) for i in range(300)]
    during = [kline("ETHUSDT", i) for i in range(600)]
    async with running(config) as rec:
        await publish_klines(bus, before)
        await wait_rows(url, "bars", len(before))

        down_at = time.monotonic()
        await asyncio.to_thread(pg.stop)
        await publish_klines(bus, during)
        while time.monotonic() - down_at < 10:
            await asyncio.sleep(0.25)
            # backpressure: the rest waits in the stream (one pull may overshoot, see queue.py)
            assert rec.queue.held <= config.capacity + config.fetch_batch
        assert metric(rec, "recorder_db_up") == 0
        assert not rec.health.ready.evaluate()[0]
        info = await bus.consumer_info("MARKET", "recorder-market")
        assert info.num_pending >= len(during) - config.capacity - config.fetch_batch

        await asyncio.to_thread(private_postgres, port)  # same data dir, same port
        await wait_rows(url, "bars", len(before) + len(during), timeout_s=60)
        assert metric(rec, "recorder_db_up") == 1
    assert await count(url, "bars") == len(before) + len(during)
    assert await rows(url, "SELECT symbol, count(*) FROM bars GROUP BY symbol ORDER BY 1") == [
        ("BTCUSDT", 300), ("ETHUSDT", 600)]


async def dead_letters(js, subject: str, n: int) -> list:
    sub = await js.pull_subscribe(subjects.dlq(subject), stream="DLQ")
    try:
        return await sub.fetch(n, timeout=5)
    finally:
        await sub.unsubscribe()


async def test_poison_message_lands_in_dlq_with_its_error_and_the_rest_commit(
        bus, nats_url, pg_dsn):
    subject = subjects.kline("exsim", "BTCUSDT", "1m")
    bad_prices = kline("BTCUSDT", 5, close="999999")  # close above high
    async with running(recorder_config(nats_url, pg_dsn, flush_ms=200)) as rec:
        await publish_klines(bus, [kline("BTCUSDT", i) for i in range(5)])
        await bus.publish(subject, b"{not json", headers={codec.MSG_ID: "garbage-1"})
        await publish(bus, subject, bad_prices, msg_id="bad-prices")
        await publish_klines(bus, [kline("BTCUSDT", i) for i in range(6, 10)])
        await wait_rows(pg_dsn, "bars", 9)
        while metric(rec, "recorder_dead_letters_total", stream="MARKET", reason="decode") < 2:
            await asyncio.sleep(0.05)
    dead = await dead_letters(bus, subject, 2)
    by_id = {m.headers[codec.MSG_ID]: m for m in dead}
    assert by_id["garbage-1"].data == b"{not json"
    assert by_id["garbage-1"].headers[codec.DLQ_ERROR].startswith("not JSON")
    error = by_id["bad-prices"].headers[codec.DLQ_ERROR]
    assert "high 102.5 is below open 100.5, close 999999" in error
    assert by_id["bad-prices"].headers[codec.DLQ_SUBJECT] == subject
    assert await count(pg_dsn, "bars") == 9
    assert await count(pg_dsn, "bars", "WHERE open_time_ms = %d" % (T0 + 5 * 60_000)) == 0


async def test_message_the_database_refuses_is_dead_lettered_and_its_batch_commits(
        bus, nats_url, pg_dsn):
    def fill(trade_id: str, time_ms: int) -> FillMsg:
        return FillMsg(namespace="paper", bot="b1", symbol="BTCUSDT", trade_id=trade_id,
                       exchange_order_id="9", side="buy", price=D("100"), qty=D("1"),
                       time_ms=time_ms)

    fills = [fill(str(i), T0 + i) for i in range(20)]
    fills.insert(7, fill("far-future", 10**16))  # beyond timestamptz: the database refuses
    subject = subjects.fleet("paper", "b1", "fill")
    async with running(recorder_config(nats_url, pg_dsn, flush_ms=300)) as rec:
        await asyncio.gather(*(publish(bus, subject, f.to_wire(), msg_id=fill_msg_id(f))
                               for f in fills))
        await wait_rows(pg_dsn, "fills", 20)
        while metric(rec, "recorder_dead_letters_total", stream="FLEET", reason="database") < 1:
            await asyncio.sleep(0.05)
        assert metric(rec, "recorder_batches_total", outcome="split") >= 1
    [dead] = await dead_letters(bus, subject, 1)
    assert dead.headers[codec.MSG_ID] == "paper:b1:fill:BTCUSDT:far-future"
    assert "out of range" in dead.headers[codec.DLQ_ERROR]
    assert await count(pg_dsn, "fills") == 20
