"""Where the risk service's policy comes from (file, KV) and the kill switch path."""

from __future__ import annotations

import asyncio
import time

import orjson

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus import subjects
from tradefleet.bus.fleet_messages import Command, CommandMsg
from tradefleet.bus.streams import KV_RISK_POLICY
from tradefleet.workers.risk.policy import POLICY_KEY
from tradefleet.workers.risk.protocol import Outcome
from tests.workers._risk import check, risk  # noqa: F401 - fixture

POLICY = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=3000)


async def _until(predicate, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_kill_switch_set_in_the_kv_policy_reaches_every_bot_within_one_second(risk, nc):
    await risk.put_policy(POLICY)
    await risk.service()
    fleet = [f"default/bot-{i}" for i in range(5)]
    bot = await risk.client()
    for name in fleet[:4]:  # these bots talked to risk ...
        await bot.report_position(name, "BTCUSDT", 0, 0)
    # ... this one is only known from its heartbeat in stream FLEET
    await risk.js.publish(subjects.fleet("default", "bot-4", "heartbeat"), b'{"v":1}')
    received: dict[str, tuple[float, dict]] = {}

    async def on_command(msg):
        received[msg.subject] = (time.monotonic(), orjson.loads(msg.data))

    await nc.subscribe("fleet.cmd.>", cb=on_command)
    await nc.flush()
    await asyncio.sleep(0.05)  # nats-server: new interest reaches other connections within ms
    t0 = time.monotonic()
    await risk.put_policy(POLICY.model_copy(update={"kill_switch": True}))
    await _until(lambda: len(received) == len(fleet), timeout_s=3)
    assert set(received) == {subjects.command(*b.split("/")) for b in fleet}
    assert all(CommandMsg.model_validate(body).command is Command.KILL
               for _, body in received.values())
    slowest = max(t for t, _ in received.values()) - t0
    assert slowest < 1.0, f"last kill command arrived after {slowest:.3f} s"


async def test_kill_switch_in_the_kv_policy_blocks_every_check(risk):
    await risk.put_policy(POLICY)
    await risk.service()
    bot = await risk.client()
    assert (await bot.check(check())).outcome is Outcome.ALLOW
    await risk.put_policy(POLICY.model_copy(update={"kill_switch": True}))
    await asyncio.sleep(0.2)
    d = await bot.check(check(bot="default/other"))
    assert d.outcome is Outcome.BLOCK and "kill switch" in d.reason


async def test_kv_policy_wins_over_the_file_policy(risk):
    await risk.put_policy(RiskPolicySpec(per_symbol_cap_usdt=100, total_cap_usdt=100))
    svc = await risk.service(POLICY)
    bot = await risk.client()
    assert svc.policy_source == "kv"
    assert (await bot.check(check(notional="200"))).outcome is Outcome.BLOCK


async def test_deleting_the_kv_policy_falls_back_to_the_file_policy(risk):
    await risk.put_policy(RiskPolicySpec(per_symbol_cap_usdt=100, total_cap_usdt=100))
    svc = await risk.service(POLICY)
    kv = await risk.js.key_value(KV_RISK_POLICY)
    await kv.delete(POLICY_KEY)
    await _until(lambda: svc.policy_source == "file")
    bot = await risk.client()
    assert (await bot.check(check(notional="200"))).outcome is Outcome.ALLOW


async def test_invalid_kv_policy_is_refused_and_the_current_one_kept(risk):
    await risk.put_policy(POLICY)
    svc = await risk.service()
    kv = await risk.js.key_value(KV_RISK_POLICY)
    rev = await kv.put(POLICY_KEY, orjson.dumps({"totalCapUsdt": -5}))
    await asyncio.sleep(0.2)
    assert svc.policy == POLICY and svc.policy_revision < rev
    sub = await risk.js.subscribe("risk.events", ordered_consumer=True)
    while True:
        event = orjson.loads((await sub.next_msg(timeout=2)).data)
        if event["type"] == "policy_rejected":
            break
    assert "totalCapUsdt" in event["error"] and event["revision"] == rev


async def test_without_any_policy_every_check_is_blocked(risk):
    await risk.service()
    bot = await risk.client()
    d = await bot.check(check())
    assert d.outcome is Outcome.BLOCK and "no RiskPolicy loaded" in d.reason


async def test_new_kv_policy_applies_to_the_next_check(risk):
    await risk.put_policy(POLICY)
    svc = await risk.service()
    bot = await risk.client()
    rev = await risk.put_policy(POLICY.model_copy(update={"per_symbol_cap_usdt": 50}))
    await _until(lambda: svc.policy_revision == rev, timeout_s=1)
    assert (await bot.check(check(notional="60"))).outcome is Outcome.BLOCK
