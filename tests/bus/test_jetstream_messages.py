"""Publishing, de-duplication and dead letters on a real JetStream."""

from decimal import Decimal

import pytest
from nats.js.api import ConsumerConfig

from tradefleet.bus import codec, subjects
from tradefleet.bus.publish import publish

KLINE = {
    "open_time": 1_700_000_040_000,
    "close_time": 1_700_000_099_999,
    "open": Decimal("37000.1"),
    "high": Decimal("37010"),
    "low": Decimal("36990.5"),
    "close": Decimal("37005.2"),
    "volume": Decimal("12.345"),
}


async def test_same_kline_published_twice_is_stored_once(bus):
    subject = subjects.kline("exsim", "BTCUSDT", "1m")
    mid = codec.kline_msg_id("exsim", "BTCUSDT", "1m", KLINE["open_time"])
    first = await publish(bus, subject, KLINE, msg_id=mid)
    again = await publish(bus, subject, KLINE, msg_id=mid)  # e.g. a feed restarted
    assert (first.duplicate, again.duplicate, again.seq) == (None, True, first.seq)
    assert (await bus.stream_info("MARKET")).state.messages == 1


async def test_published_body_decodes_with_decimals_intact(bus):
    subject = subjects.kline("exsim", "BTCUSDT", "1m")
    await publish(bus, subject, KLINE)
    msg = await bus.get_last_msg("MARKET", subject)
    body = codec.decode(msg.data, subject=subject)
    assert Decimal(body["close"]) == Decimal("37005.2") and body["v"] == 1


async def test_malformed_payload_is_dead_lettered_with_its_error(bus):
    subject = subjects.market("exsim", "BTCUSDT", "mark")
    await bus.publish(subject, b"\x00garbage", headers={"Nats-Msg-Id": "m-1"})
    sub = await bus.pull_subscribe(subject, durable="test-mark", stream="MARKET")
    (msg,) = await sub.fetch(1, timeout=5)
    with pytest.raises(codec.DecodeError) as err:
        codec.decode(msg.data, subject=msg.subject)
    await codec.dead_letter_msg(bus, msg, err.value)
    await msg.ack()

    dead = await bus.get_last_msg("DLQ", subjects.dlq(subject))
    assert dead.data == b"\x00garbage"
    assert dead.headers[codec.DLQ_SUBJECT] == subject
    assert dead.headers[codec.DLQ_ERROR].startswith("not JSON")
    assert dead.headers[codec.DLQ_ERROR_TYPE] == "DecodeError"
    assert (dead.headers[codec.DLQ_STREAM], dead.headers[codec.DLQ_STREAM_SEQ]) == ("MARKET", "1")


async def test_dead_lettering_a_redelivered_message_twice_stores_it_once(bus):
    subject = subjects.fleet("prod", "bot-a", "fill")
    for _ in range(2):
        await codec.dead_letter(bus, subject, b"{}", "missing v", {"Nats-Msg-Id": "fill-7"})
    assert (await bus.stream_info("DLQ")).state.messages == 1


async def test_restarting_bot_reads_its_last_command(bus):
    subject = subjects.command("prod", "bot-a")
    await publish(bus, subject, {"command": "pause"})
    await publish(bus, subject, {"command": "drain"})
    await publish(bus, subjects.command("prod", "bot-b"), {"command": "resume"})
    psub = await bus.pull_subscribe(
        subject, stream="FLEET", config=ConsumerConfig(deliver_policy="last_per_subject")
    )
    (msg,) = await psub.fetch(1, timeout=5)
    assert codec.decode(msg.data)["command"] == "drain"
