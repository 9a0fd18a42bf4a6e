"""The shared risk service over real NATS JetStream: caps, races, guards, restarts.

Each test runs the service in-process on its own NATS connection and bots as
RiskServiceClients on theirs, against the session's embedded nats-server.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import orjson

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.workers.risk.protocol import Outcome
from tests.workers._risk import Clock, check, request, risk  # noqa: F401 - fixture

LAST_ROOM = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=1000)


async def race_for_the_last_room(bots, rounds: int) -> list[list[str]]:
    """Each round every bot asks for 600 of a 1000 cap at once; approved bots release."""
    outcomes = []
    for _ in range(rounds):
        reqs = [check(bot=f"default/b{i}", notional="600") for i in range(len(bots))]
        decisions = await asyncio.gather(*(c.check(r) for c, r in zip(bots, reqs)))
        outcomes.append(sorted(d.outcome.value for d in decisions))
        for c, r, d in zip(bots, reqs, decisions):
            if d.outcome.approved:
                await c.release(d.reservation_id, r.bot, r.symbol)
    return outcomes


async def test_two_bots_racing_for_the_last_room_only_one_is_approved(risk):
    await risk.service(LAST_ROOM)
    bots = [await risk.client(), await risk.client()]
    outcomes = await race_for_the_last_room(bots, rounds=10)
    assert outcomes == [["allow", "block"]] * 10


async def test_two_replicas_in_the_queue_group_never_both_approve_the_last_room(risk):
    replicas = [await risk.service(LAST_ROOM, replica="r1"),
                await risk.service(LAST_ROOM, replica="r2")]
    bots = [await risk.client(), await risk.client()]
    outcomes = await race_for_the_last_room(bots, rounds=20)
    assert outcomes == [["allow", "block"]] * 20
    served = [svc.registry.get_sample_value("risk_checks_total") for svc in replicas]
    assert all(n and n > 0 for n in served), f"both replicas must have decided checks: {served}"


async def test_soft_cap_allows_within_grace_then_blocks(risk):
    clock = Clock()
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    await risk.service(policy, clock=clock)
    bot = await risk.client()
    await bot.report_position("default/a", "BTCUSDT", D(950), clock())
    first = await bot.check(check(notional="100"))
    assert first.outcome is Outcome.SOFT_ALLOW
    await bot.report_position("default/a", "BTCUSDT", D(1050), clock())
    await bot.confirm(first.reservation_id, "default/a", "BTCUSDT", D(100))
    clock.advance(30_000)
    assert (await bot.check(check(notional="50"))).outcome is Outcome.SOFT_ALLOW
    clock.advance(31_000)
    late = await bot.check(check(notional="10"))
    assert late.outcome is Outcome.BLOCK and "grace" in late.reason


async def test_hard_cap_blocks_and_names_the_limit(risk):
    await risk.service(LAST_ROOM)
    bot = await risk.client()
    d = await bot.check(check(notional="1000.01"))
    assert d.outcome is Outcome.BLOCK and "symbol BTCUSDT" in d.reason and "1000.01" in d.reason


async def test_correlated_pair_is_capped(risk):
    policy = RiskPolicySpec.model_validate({
        "perSymbolCapUsdt": 1000, "totalCapUsdt": 5000,
        "correlationClusters": [{"name": "majors", "symbols": ["BTCUSDT", "ETHUSDT"],
                                 "capUsdt": 1200}]})
    await risk.service(policy)
    a, b = await risk.client(), await risk.client()
    await a.report_position("default/a", "BTCUSDT", D(800), 0)
    over = await b.check(check(bot="default/b", symbol="ETHUSDT", notional="500"))
    assert over.outcome is Outcome.BLOCK and "cluster majors" in over.reason
    assert (await b.check(check(bot="default/b", symbol="ETHUSDT", notional="400"))).outcome \
        is Outcome.ALLOW


async def test_daily_loss_halt_survives_a_restart_of_the_risk_service(risk):
    policy = RiskPolicySpec(daily_max_loss_usdt=150)
    first = await risk.service(policy)
    bot = await risk.client()
    await bot.report_trade("default/a", "BTCUSDT", D("-100"), 0)
    await bot.report_trade("default/a", "BTCUSDT", D("-60"), 0)
    await risk.stop(first)
    await risk.service(policy)
    d = await bot.check(check())
    assert d.outcome is Outcome.BLOCK and "halted: daily loss 160.00" in d.reason


async def test_expired_reservation_frees_its_room(risk):
    clock = Clock()
    await risk.service(LAST_ROOM.model_copy(update={"reservation_ttl_ms": 1_000}), clock=clock)
    a, b = await risk.client(), await risk.client()
    assert (await a.check(check(bot="default/a", notional="1000"))).outcome is Outcome.ALLOW
    assert (await b.check(check(bot="default/b", notional="1000"))).outcome is Outcome.BLOCK
    clock.advance(1_000)
    assert (await b.check(check(bot="default/b", notional="1000"))).outcome is Outcome.ALLOW


async def test_malformed_check_gets_an_error_reply_and_is_dead_lettered(risk, nc):
    await risk.service(LAST_ROOM)
    bad = check().to_dict() | {"side": "sideways", "v": 1}
    reply = await request(nc, "risk.check", orjson.dumps(bad), timeout=2)
    assert "field 'side'" in orjson.loads(reply.data)["error"]
    garbage = await request(nc, "risk.check", b"\xff not json", timeout=2)
    assert "not JSON" in orjson.loads(garbage.data)["error"]
    await asyncio.sleep(0.2)  # dead letters are written in the background
    dlq = await risk.js.stream_info("DLQ", subjects_filter="dlq.risk.check")
    assert dlq.state.subjects == {"dlq.risk.check": 2}


async def test_service_keeps_answering_after_malformed_requests(risk, nc):
    await risk.service(LAST_ROOM)
    for payload in (b"", b"[]", b'{"v": 1}', b'{"v": 1, "notional_usdt": {"x": 1}}'):
        await request(nc, "risk.check", payload, timeout=2)
    bot = await risk.client()
    assert (await bot.check(check())).outcome is Outcome.ALLOW


async def test_every_decision_is_an_event_on_the_risk_stream_with_its_reason(risk):
    await risk.service(LAST_ROOM)
    bot = await risk.client()
    allowed = await bot.check(check(notional="700"))
    blocked = await bot.check(check(notional="700"))
    await asyncio.sleep(0.1)
    sub = await risk.js.subscribe("risk.events", ordered_consumer=True)
    events = []
    while len(events) < 2:
        msg = await sub.next_msg(timeout=2)
        body = orjson.loads(msg.data)
        if body["type"] == "decision":
            events.append(body)
    await sub.unsubscribe()
    assert [(e["request_id"], e["outcome"]) for e in events] == [
        (allowed.request_id, "allow"), (blocked.request_id, "block")]
    assert events[1]["reason"] == blocked.reason and events[1]["notional_usdt"] == "700"


async def test_confirmed_fill_keeps_its_room_as_a_position(risk):
    await risk.service(LAST_ROOM)
    a, b = await risk.client(), await risk.client()
    d = await a.check(check(bot="default/a", notional="800"))
    await a.report_position("default/a", "BTCUSDT", D(800), 0)
    await a.confirm(d.reservation_id, "default/a", "BTCUSDT", D(800))
    assert (await b.check(check(bot="default/b", notional="300"))).outcome is Outcome.BLOCK
    assert (await b.check(check(bot="default/b", notional="200"))).outcome is Outcome.ALLOW


async def test_daily_halt_lifts_at_midnight_utc(risk):
    clock = Clock()  # 2025-05-05T00:00Z
    await risk.service(RiskPolicySpec(daily_max_loss_usdt=150), clock=clock)
    bot = await risk.client()
    clock.advance(23 * 3_600_000)
    await bot.report_trade("default/a", "BTCUSDT", D("-200"), clock())
    assert (await bot.check(check())).outcome is Outcome.BLOCK
    clock.advance(3_600_000)  # 00:00 UTC next day
    assert (await bot.check(check())).outcome is Outcome.ALLOW


async def test_twelve_bots_on_two_replicas_fill_the_cap_exactly(risk):
    await risk.service(LAST_ROOM, replica="r1")
    await risk.service(LAST_ROOM, replica="r2")
    bots = [await risk.client(timeout_ms=3_000) for _ in range(12)]
    for _ in range(5):
        reqs = [check(bot=f"default/b{i}", notional="250") for i in range(12)]
        decisions = await asyncio.gather(*(c.check(r) for c, r in zip(bots, reqs)))
        approved = [(c, r, d) for c, r, d in zip(bots, reqs, decisions) if d.outcome.approved]
        assert len(approved) == 4, [d.reason for d in decisions]
        for c, r, d in approved:
            await c.release(d.reservation_id, r.bot, r.symbol)
