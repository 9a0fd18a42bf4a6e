"""ensure_streams / ensure_kv against a real nats-server with JetStream."""

import pytest
from nats.js.api import StorageType

from tradefleet.bus import streams
from tradefleet.bus.streams import BusConfig, StreamConfigError, ensure_kv, ensure_streams


async def test_ensure_streams_creates_every_stream_with_its_subjects(js):
    actions = await ensure_streams(js)
    assert actions == {"MARKET": "created", "FLEET": "created", "RISK": "created", "DLQ": "created"}
    subjects = {name: (await js.stream_info(name)).config.subjects for name in actions}
    assert subjects == {
        "MARKET": ["md.>"],
        "FLEET": ["fleet.>"],
        "RISK": ["risk.events"],
        "DLQ": ["dlq.>"],
    }


async def test_ensure_streams_is_idempotent(js):
    await ensure_streams(js)
    again = await ensure_streams(js)
    assert set(again.values()) == {"unchanged"}


async def test_ensure_streams_applies_configured_limits(js):
    config = BusConfig.model_validate(
        {"market": {"max_age_s": 3600, "max_bytes": 64 * 1024 * 1024, "duplicate_window_s": 300}}
    )
    await ensure_streams(js, config)
    cfg = (await js.stream_info("MARKET")).config
    assert (cfg.max_age, cfg.max_bytes, cfg.duplicate_window) == (3600, 64 * 1024 * 1024, 300)


async def test_changed_limits_update_the_existing_stream_keeping_messages(js):
    await ensure_streams(js)
    await js.publish("risk.events", b'{"v":1}')
    actions = await ensure_streams(js, BusConfig.model_validate({"risk": {"max_age_s": 7200}}))
    assert actions["RISK"] == "updated"
    info = await js.stream_info("RISK")
    assert (info.config.max_age, info.state.messages) == (7200, 1)


async def test_storage_change_is_refused_naming_stream_and_fix(js):
    await ensure_streams(js)
    memory = BusConfig.model_validate({"dlq": {"storage": "memory"}})
    with pytest.raises(
        StreamConfigError, match=r"stream DLQ cannot be updated in place: storage is 'file'"
    ):
        await ensure_streams(js, memory)
    assert (await js.stream_info("DLQ")).config.storage == StorageType.FILE


async def test_a_foreign_stream_owning_the_subjects_is_reported(js):
    await js.add_stream(name="LEGACY", subjects=["risk.events"])
    with pytest.raises(StreamConfigError, match=r"cannot create stream RISK on \['risk.events'\]"):
        await ensure_streams(js)


def test_duplicate_window_longer_than_max_age_is_refused():
    with pytest.raises(
        ValueError, match=r"duplicate_window_s \(600.0\) must not exceed max_age_s \(60.0\)"
    ):
        BusConfig.model_validate({"fleet": {"max_age_s": 60, "duplicate_window_s": 600}})


def test_unknown_limit_name_is_refused():
    with pytest.raises(ValueError, match="market.max_age\n"):
        BusConfig.model_validate({"market": {"max_age": 60}})


async def test_ensure_kv_creates_the_three_buckets(js):
    actions = await ensure_kv(js)
    assert actions == {"risk-state": "created", "risk-policy": "created", "locks": "created"}
    locks = await js.key_value(streams.KV_LOCKS)
    await locks.put("pool.main", b"prod/btc-momentum")
    assert (await locks.get("pool.main")).value == b"prod/btc-momentum"


async def test_ensure_kv_is_idempotent_and_updates_history(js):
    await ensure_kv(js)
    assert set((await ensure_kv(js)).values()) == {"unchanged"}
    actions = await ensure_kv(js, BusConfig.model_validate({"locks": {"history": 3}}))
    assert actions["locks"] == "updated"
    status = await (await js.key_value(streams.KV_LOCKS)).status()
    assert status.history == 3
