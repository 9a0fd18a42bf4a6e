"""What the risk service tells bots: auto-close over the caps, drain on close_all halts."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import orjson
import pytest

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus import subjects
from tradefleet.bus.fleet_messages import CommandMsg
from tradefleet.workers.risk.commands import AUTO_CLOSE_SUPPORTED
from tradefleet.workers.risk.service import ServiceSettings
from tests.workers._risk import Clock, risk  # noqa: F401 - fixture

FAST = ServiceSettings(housekeeping_s=0.05)


async def _next(sub, timeout: float = 3.0) -> dict:
    return orjson.loads((await sub.next_msg(timeout=timeout)).data)


async def _auto_close_event(js, timeout: float = 3.0) -> dict:
    sub = await js.subscribe("risk.events", ordered_consumer=True)
    try:
        while (event := await _next(sub, timeout))["type"] != "auto_close":
            pass
    finally:
        await sub.unsubscribe()
    return event


async def test_position_over_the_cap_after_grace_gets_an_auto_close_instruction(risk):
    clock = Clock()
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    await risk.service(policy, clock=clock, settings=FAST)
    bot = await risk.client()
    await bot.report_position("default/a", "BTCUSDT", D(1150), clock())
    clock.advance(60_000)
    event = await _auto_close_event(risk.js)
    assert (event["bot"], event["symbol"]) == ("default/a", "BTCUSDT")
    assert D(event["notional_usdt"]) == 150 and D(event["target_notional_usdt"]) == 1000


@pytest.mark.skipif(not AUTO_CLOSE_SUPPORTED, reason="the bot protocol has no auto_close "
                    "command yet (tradefleet.bus.fleet_messages.Command)")
async def test_auto_close_instruction_reaches_the_bots_command_subject(risk, nc):
    clock = Clock()
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.1)
    await risk.service(policy, clock=clock, settings=FAST)
    sub = await nc.subscribe(subjects.command("default", "a"))
    bot = await risk.client()
    await bot.report_position("default/a", "BTCUSDT", D(1200), clock())
    command = await _next(sub)
    assert command["command"] == "auto_close" and D(command["target_notional_usdt"]) == 1000


async def test_position_within_grace_gets_no_auto_close(risk):
    clock = Clock()
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    svc = await risk.service(policy, clock=clock, settings=FAST)
    bot = await risk.client()
    await bot.report_position("default/a", "BTCUSDT", D(1150), clock())
    clock.advance(59_000)
    await asyncio.sleep(0.3)  # six housekeeping rounds
    assert svc.registry.get_sample_value("risk_auto_close_total") == 0


async def test_daily_guard_with_close_all_sends_drain_to_the_halted_bot(risk, nc):
    await risk.service(RiskPolicySpec(max_consecutive_losses=2, on_halt="close_all"))
    sub = await nc.subscribe(subjects.command("default", "a"))
    bot = await risk.client()
    for _ in range(2):
        await bot.report_trade("default/a", "BTCUSDT", D("-5"), 0)
    command = await _next(sub)
    assert command["command"] == "drain" and "2 consecutive losses" in command["reason"]
    assert CommandMsg.model_validate(command).issued_by == "risk"  # the bots' own model


async def test_a_halt_is_an_event_on_the_risk_stream(risk):
    await risk.service(RiskPolicySpec(daily_max_loss_usdt=50))
    bot = await risk.client()
    await bot.report_trade("default/a", "BTCUSDT", D("-60"), 0)
    sub = await risk.js.subscribe("risk.events", ordered_consumer=True)
    while (event := await _next(sub))["type"] != "halt":
        pass
    assert event["bot"] == "default/a" and event["action"] == "halt"
    assert event["reason"].startswith("daily loss 60.00")
