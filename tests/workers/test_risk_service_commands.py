"""Commands the risk service sends to bots: auto-close over the caps, flatten on close_all."""

from __future__ import annotations

from decimal import Decimal as D

import orjson

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus import subjects
from tradefleet.workers.risk.service import ServiceSettings
from tests.workers._risk import Clock, risk  # noqa: F401 - fixture

FAST = ServiceSettings(housekeeping_s=0.05)


async def _next(sub, timeout: float = 3.0) -> dict:
    return orjson.loads((await sub.next_msg(timeout=timeout)).data)


async def test_position_over_the_cap_after_grace_gets_an_auto_close_command(risk, nc):
    clock = Clock()
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    await risk.service(policy, clock=clock, settings=FAST)
    sub = await nc.subscribe(subjects.command("default", "a"))
    bot = await risk.client()
    await bot.report_position("default/a", "BTCUSDT", D(1150), clock())
    clock.advance(60_000)
    command = await _next(sub)
    assert command["command"] == "auto_close" and command["symbol"] == "BTCUSDT"
    assert D(command["notional_usdt"]) == 150 and D(command["target_notional_usdt"]) == 1000


async def test_position_within_grace_gets_no_auto_close(risk, nc):
    clock = Clock()
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    await risk.service(policy, clock=clock, settings=FAST)
    sub = await nc.subscribe(subjects.command("default", "a"))
    bot = await risk.client()
    await bot.report_position("default/a", "BTCUSDT", D(1150), clock())
    clock.advance(59_000)
    try:
        await sub.next_msg(timeout=0.3)
        raise AssertionError("no command expected within the grace")
    except TimeoutError:
        pass


async def test_daily_guard_with_close_all_sends_flatten_to_the_halted_bot(risk, nc):
    await risk.service(RiskPolicySpec(max_consecutive_losses=2, on_halt="close_all"))
    sub = await nc.subscribe(subjects.command("default", "a"))
    bot = await risk.client()
    for _ in range(2):
        await bot.report_trade("default/a", "BTCUSDT", D("-5"), 0)
    command = await _next(sub)
    assert command["command"] == "flatten" and "2 consecutive losses" in command["reason"]


async def test_a_halt_is_an_event_on_the_risk_stream(risk):
    await risk.service(RiskPolicySpec(daily_max_loss_usdt=50))
    bot = await risk.client()
    await bot.report_trade("default/a", "BTCUSDT", D("-60"), 0)
    sub = await risk.js.subscribe("risk.events", ordered_consumer=True)
    while (event := await _next(sub))["type"] != "halt":
        pass
    assert event["bot"] == "default/a" and event["action"] == "halt"
    assert event["reason"].startswith("daily loss 60.00")
