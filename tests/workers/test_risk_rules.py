"""The fleet's risk rules (seed §6 PortfolioGuard / DailyGuard), evaluated in-process."""

import asyncio
from decimal import Decimal as D

import pytest

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.workers.risk import CheckRequest, FleetState, LocalRiskChecker, Outcome, evaluate
from tradefleet.workers.risk import rules

T0 = 1_746_403_200_000  # 2025-05-05T00:00Z


def req(rid, bot="default/a", symbol="BTCUSDT", notional="100", t=T0, **kw):
    return CheckRequest(request_id=rid, bot=bot, symbol=symbol, side="long",
                        notional_usdt=D(notional), time_ms=t, **kw)


def test_within_caps_is_allowed_and_reserves_the_notional():
    policy, state = RiskPolicySpec(per_symbol_cap_usdt=500, total_cap_usdt=1500), FleetState()
    d = evaluate(policy, state, req("r1", notional="400"))
    assert d.outcome is Outcome.ALLOW and d.reservation_id == "r1"
    assert state.gross({"BTCUSDT"}) == D(400)


def test_per_symbol_hard_cap_blocks_and_reserves_nothing():
    policy, state = RiskPolicySpec(per_symbol_cap_usdt=500, total_cap_usdt=1500), FleetState()
    evaluate(policy, state, req("r1", notional="400"))
    d = evaluate(policy, state, req("r2", bot="default/b", notional="200"))
    assert d.outcome is Outcome.BLOCK and "symbol BTCUSDT" in d.reason and "600.00" in d.reason
    assert set(state.reservations) == {"r1"}


def test_two_bots_racing_for_the_last_room_only_one_gets_it():
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=1000)
    checker = LocalRiskChecker(policy)

    async def race():
        return await asyncio.gather(*(checker.check(req(f"r{i}", bot=f"default/b{i}",
                                                        notional="600")) for i in range(2)))
    outcomes = sorted(d.outcome.value for d in asyncio.run(race()))
    assert outcomes == ["allow", "block"]


def test_soft_cap_allows_within_grace_then_blocks():
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=1000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    state = FleetState()
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(950))
    first = evaluate(policy, state, req("r1", notional="100", t=T0))
    assert first.outcome is Outcome.SOFT_ALLOW
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(1050))
    rules.confirm(policy, state, "r1")
    within = evaluate(policy, state, req("r2", notional="50", t=T0 + 30_000))
    assert within.outcome is Outcome.SOFT_ALLOW
    after = evaluate(policy, state, req("r3", notional="10", t=T0 + 61_000))
    assert after.outcome is Outcome.BLOCK and "grace" in after.reason


def test_beyond_the_soft_band_blocks_at_once():
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=1000, soft_cap_pct=0.1)
    d = evaluate(policy, FleetState(), req("r1", notional="1101"))
    assert d.outcome is Outcome.BLOCK


def test_correlated_cluster_caps_the_pair():
    policy = RiskPolicySpec.model_validate({
        "perSymbolCapUsdt": 1000, "totalCapUsdt": 5000,
        "correlationClusters": [{"name": "majors", "symbols": ["BTCUSDT", "ETHUSDT"],
                                 "capUsdt": 1200, "maxCorrelatedPositions": 2}]})
    state = FleetState()
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(800))
    assert evaluate(policy, state, req("r1", bot="default/b", symbol="ETHUSDT",
                                       notional="500")).outcome is Outcome.BLOCK
    assert evaluate(policy, state, req("r2", bot="default/b", symbol="ETHUSDT",
                                       notional="300")).outcome is Outcome.ALLOW
    third = evaluate(policy, state, req("r3", bot="default/c", symbol="BTCUSDT", notional="10"))
    assert third.outcome is Outcome.BLOCK and "correlated positions" in third.reason


def test_daily_loss_halts_the_bot_until_midnight_utc():
    policy = RiskPolicySpec(daily_max_loss_usdt=150)
    state = FleetState()
    evaluate(policy, state, req("warm", t=T0))
    assert rules.record_trade(policy, state, "default/a", D(-100), D(9900), T0 + 1) is None
    halt = rules.record_trade(policy, state, "default/a", D(-60), D(9840), T0 + 2)
    assert halt and "daily loss 160.00" in halt
    blocked = evaluate(policy, state, req("r1", t=T0 + 3))
    assert blocked.outcome is Outcome.BLOCK and "halted" in blocked.reason
    other_bot = evaluate(policy, state, req("r2", bot="default/b", t=T0 + 4))
    assert other_bot.outcome is Outcome.ALLOW
    next_day = evaluate(policy, state, req("r3", t=T0 + 86_400_000))
    assert next_day.outcome is Outcome.ALLOW


def test_losing_streak_halts_and_the_halt_survives_a_state_round_trip():
    policy = RiskPolicySpec(max_consecutive_losses=3)
    state = FleetState()
    for i in range(3):
        rules.record_trade(policy, state, "default/a", D(-1), None, T0 + i)
    restored = FleetState.from_dict(state.to_dict())
    assert evaluate(policy, restored, req("r1", t=T0 + 10)).outcome is Outcome.BLOCK


def test_kill_switch_blocks_everything():
    d = evaluate(RiskPolicySpec(kill_switch=True), FleetState(), req("r1"))
    assert d.outcome is Outcome.BLOCK and "kill switch" in d.reason


def test_live_mode_needs_allow_live():
    assert evaluate(RiskPolicySpec(), FleetState(), req("r1", mode="live")).outcome is Outcome.BLOCK
    assert evaluate(RiskPolicySpec(allow_live=True), FleetState(),
                    req("r2", mode="live")).outcome is Outcome.ALLOW


def test_capital_pool_needs_its_lock():
    policy = RiskPolicySpec.model_validate({"capitalPools": [{"name": "mm", "capUsdt": 1000}]})
    state = FleetState(locks={"mm": "default/other"})
    d = evaluate(policy, state, req("r1", pool="mm"))
    assert d.outcome is Outcome.BLOCK and "lock is held by default/other" in d.reason
    state.locks["mm"] = "default/a"
    assert evaluate(policy, state, req("r2", pool="mm")).outcome is Outcome.ALLOW


def test_expired_reservation_frees_its_room():
    policy = RiskPolicySpec(per_symbol_cap_usdt=500, total_cap_usdt=500, reservation_ttl_ms=1000)
    state = FleetState()
    evaluate(policy, state, req("r1", notional="500"))
    assert evaluate(policy, state, req("r2", notional="500", t=T0 + 500)).outcome is Outcome.BLOCK
    assert evaluate(policy, state, req("r3", notional="500", t=T0 + 1000)).outcome is Outcome.ALLOW


def test_auto_close_brings_exposure_back_under_the_cap_after_grace():
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=1000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    state = FleetState()
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(700))
    evaluate(policy, state, req("r1", bot="default/b", notional="400", t=T0))
    rules.record_position(policy, state, "default/b", "BTCUSDT", D(-400))
    rules.confirm(policy, state, "r1")
    assert rules.auto_close(policy, state, T0 + 10_000) == []
    cuts = rules.auto_close(policy, state, T0 + 60_000)
    assert cuts == [("default/a", "BTCUSDT", D(100))]


@pytest.mark.parametrize("field,value", [("side", "up"), ("notional_usdt", "-5")])
def test_malformed_request_is_refused_naming_the_field(field, value):
    wire = req("r1").to_dict() | {field: value}
    with pytest.raises(ValueError, match=field):
        CheckRequest.from_dict(wire)


def test_position_grown_over_the_cap_by_a_price_move_is_auto_closed_after_grace():
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.2,
                            soft_cap_grace_sec=60)
    state = FleetState()
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(900), T0)
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(1100), T0 + 1_000)
    assert state.soft_since_ms == {"symbol BTCUSDT": T0 + 1_000}
    assert rules.auto_close(policy, state, T0 + 30_000) == []
    assert rules.auto_close(policy, state, T0 + 61_000) == [("default/a", "BTCUSDT", D(100))]


def test_position_beyond_the_soft_band_is_cut_back_to_the_cap_at_once():
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.1,
                            soft_cap_grace_sec=300)
    state = FleetState()
    rules.record_position(policy, state, "default/a", "ETHUSDT", D(-1300), T0)
    assert rules.auto_close(policy, state, T0) == [("default/a", "ETHUSDT", D(300))]


def test_position_back_under_the_cap_stops_the_grace_clock():
    policy = RiskPolicySpec(per_symbol_cap_usdt=1000, total_cap_usdt=5000, soft_cap_pct=0.2)
    state = FleetState()
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(1100), T0)
    rules.record_position(policy, state, "default/a", "BTCUSDT", D(900), T0 + 1)
    assert state.soft_since_ms == {}


def test_a_resent_trade_report_is_booked_once():
    policy = RiskPolicySpec(daily_max_loss_usdt=150)
    state = FleetState()
    rules.record_trade(policy, state, "default/a", D(-100), None, T0, trade_id="t1")
    assert rules.record_trade(policy, state, "default/a", D(-100), None, T0 + 1, trade_id="t1") is None
    assert state.bot_days["default/a"].realized_pnl_usdt == D(-100)
    assert "default/a" not in state.halts


def test_a_bot_cannot_confirm_another_bots_reservation():
    policy, state = RiskPolicySpec(), FleetState()
    evaluate(policy, state, req("r1", bot="default/a"))
    with pytest.raises(ValueError, match="belongs to bot default/a"):
        rules.confirm(policy, state, "r1", "default/b")
    assert "r1" in state.reservations


@pytest.mark.parametrize("field,value", [
    ("bot", "no-namespace"), ("bot", "Default/A"), ("symbol", "btc/usdt"),
    ("notional_usdt", "NaN"), ("notional_usdt", "lots"), ("time_ms", True), ("mode", "real"),
    ("request_id", ""), ("pool", "Main Pool"),
])
def test_malformed_field_is_refused_naming_it(field, value):
    wire = req("r1").to_dict() | {field: value}
    with pytest.raises(ValueError, match=f"field '{field}'"):
        CheckRequest.from_dict(wire)


def test_missing_field_is_refused_naming_it():
    wire = req("r1").to_dict()
    del wire["symbol"]
    with pytest.raises(ValueError, match="field 'symbol': missing"):
        CheckRequest.from_dict(wire)
