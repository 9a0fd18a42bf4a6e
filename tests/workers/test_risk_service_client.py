"""RiskServiceClient fails closed: no answer in time means no new exposure, never an error."""

from __future__ import annotations

import time
from decimal import Decimal as D

import orjson

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus import subjects
from tradefleet.bus.codec import encode
from tradefleet.workers.risk.protocol import Outcome, TradeReport
from tests.workers._risk import check, request, risk  # noqa: F401 - fixture

POLICY = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=1000)


async def test_check_with_no_risk_service_running_is_refused_within_its_timeout(risk):
    bot = await risk.client(timeout_ms=300)
    t0 = time.monotonic()
    d = await bot.check(check())
    assert d.outcome is Outcome.BLOCK and "no risk service" in d.reason
    assert time.monotonic() - t0 < 0.4


async def test_check_with_a_hung_risk_service_is_refused_within_its_timeout(risk, nc):
    async def never_answers(msg):  # a service that takes requests and never replies
        return None

    await nc.subscribe(subjects.RISK_CHECK, queue=subjects.RISK_QUEUE, cb=never_answers)
    await nc.flush()
    bot = await risk.client(timeout_ms=200)
    t0 = time.monotonic()
    d = await bot.check(check())
    elapsed = time.monotonic() - t0
    assert d.outcome is Outcome.BLOCK and "no answer within 200 ms" in d.reason
    assert 0.19 < elapsed < 0.4


async def test_check_after_the_service_stopped_is_refused(risk):
    svc = await risk.service(POLICY)
    bot = await risk.client(timeout_ms=300)
    assert (await bot.check(check())).outcome is Outcome.ALLOW
    await risk.stop(svc)
    assert (await bot.check(check())).outcome is Outcome.BLOCK


async def test_unacknowledged_reports_block_checks_until_the_service_has_them(risk):
    bot = await risk.client(timeout_ms=300)
    await bot.report_position("default/a", "BTCUSDT", D(900), 0)  # nobody listens yet
    assert bot.pending_reports == 1
    await risk.service(POLICY)
    d = await bot.check(check(bot="default/b", notional="200"))
    assert bot.pending_reports == 0
    assert d.outcome is Outcome.BLOCK and "1100.00" in d.reason  # the 900 position counted


async def test_reports_while_the_service_is_down_are_refused_checks_meanwhile(risk):
    bot = await risk.client(timeout_ms=200)
    await bot.report_trade("default/a", "BTCUSDT", D("-10"), 0)
    d = await bot.check(check())
    assert d.outcome is Outcome.BLOCK and "not acknowledged" in d.reason


async def test_a_trade_report_sent_twice_is_counted_once(risk, nc):
    await risk.service(RiskPolicySpec(daily_max_loss_usdt=150))
    report = TradeReport("trade-1", "default/a", "BTCUSDT", D("-100"), 0).to_dict()
    for _ in range(2):  # a client re-sends when the first reply was lost
        reply = await request(nc, subjects.RISK_TRADE, encode(report))
        assert orjson.loads(reply.data) == {"ok": True, "halt": None, "v": 1}
    bot = await risk.client()
    assert (await bot.check(check(bot="default/a"))).outcome is Outcome.ALLOW
