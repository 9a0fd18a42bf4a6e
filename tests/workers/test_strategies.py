"""Strategies on fixed windows of real Binance data: signals match an independent TA-Lib oracle.

Each expected signal list is computed here from ``talib`` indicator arrays and numpy,
never copied from the strategy's output. Windows: BTCUSDT 1m on 2025-05-08 (the day BTC
went back above 100,000 USDT) and the whole bundled week 2025-05-05 → 2025-05-11.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pydantic
import pytest
import talib

from tests.workers import _data
from tradefleet.workers.strategies import (
    STRATEGIES,
    Action,
    Bar,
    Side,
    Signal,
    UnknownStrategyError,
    build_strategy,
    in_no_trade_window,
    params_model,
)

DAY = "2025-05-08"
EIGHT_HOURS_MS = 8 * 3_600_000


# --------------------------------------------------------------------------- helpers
def run(strategy, bars, funding=()) -> list[Signal]:
    """Feed ``bars`` in order, each funding event once its time is reached; collect signals."""
    events = list(funding)
    k = 0
    out = []
    for bar in bars:
        while k < len(events) and events[k][0] <= bar.close_time:
            strategy.on_funding(events[k][1], events[k][0])
            k += 1
        sig = strategy.on_bar(bar)
        if sig is not None:
            out.append(sig)
    return out


def keys(signals: list[Signal]) -> list[tuple[int, str]]:
    return [(s.close_time, s.action.value) for s in signals]


def sign_changes(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """(index, +1 | -1) where the sign of a − b changes, ignoring NaN and exact ties."""
    s = np.sign(a - b)
    idx = np.flatnonzero(np.nan_to_num(s) != 0)
    nz = s[idx]
    flips = np.flatnonzero(nz[1:] != nz[:-1]) + 1
    return [(int(idx[j]), int(nz[j])) for j in flips]


def dedupe_directions(events: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Always-in-the-market rule: an event only counts when it changes the direction."""
    out: list[tuple[int, int]] = []
    for i, d in events:
        if not out or out[-1][1] != d:
            out.append((i, d))
    return out


def prior(a: np.ndarray) -> np.ndarray:
    """a shifted one bar later: the value as of the previous bar."""
    return np.concatenate(([np.nan], a[:-1]))


def latest_funding_at(close_times: np.ndarray, funding) -> np.ndarray:
    """The most recent funding rate known at each close time (NaN before the first)."""
    times = np.array([t for t, _ in funding])
    rates = np.array([r for _, r in funding])
    j = np.searchsorted(times, close_times, side="right") - 1
    return np.where(j >= 0, rates[np.maximum(j, 0)], np.nan)


def near_funding_time(close_time_ms: int, window_s: int) -> bool:
    """Oracle for the no-trade window, from calendar arithmetic on the UTC time."""
    t = dt.datetime.fromtimestamp(close_time_ms / 1000, tz=dt.timezone.utc)
    day0 = t.replace(hour=0, minute=0, second=0, microsecond=0)
    cuts = [day0 + dt.timedelta(hours=h) for h in (-8, 0, 8, 16, 24)]
    return min(abs((t - c).total_seconds()) for c in cuts) <= window_s


# --------------------------------------------------------------------------- ema_cross
def ema_crossings(bars, fast, slow):
    a = _data.arrays(bars)
    return a, sign_changes(talib.EMA(a["close"], fast), talib.EMA(a["close"], slow))


def test_ema_cross_long_only_enters_on_cross_up_and_exits_on_cross_down():
    bars = _data.day(DAY)
    a, crosses = ema_crossings(bars, 20, 50)
    if crosses and crosses[0][1] < 0:
        crosses = crosses[1:]  # flat: the first cross down has nothing to exit
    expected = [(int(a["close_time"][i]), "enter_long" if d > 0 else "exit") for i, d in crosses]
    got = run(build_strategy("ema_cross", "BTCUSDT", {"ema_fast": 20, "ema_slow": 50}), bars)
    assert len(expected) >= 10
    assert keys(got) == expected


def test_ema_cross_with_shorts_reverses_on_every_cross():
    bars = _data.day(DAY)
    a, crosses = ema_crossings(bars, 9, 21)
    expected = [(int(a["close_time"][i]), "enter_long" if d > 0 else "enter_short")
                for i, d in crosses]
    got = run(build_strategy("ema_cross", "BTCUSDT",
                             {"ema_fast": 9, "ema_slow": 21, "allow_shorts": True}), bars)
    assert len(expected) >= 20
    assert keys(got) == expected


def test_ema_cross_seed_name_ema_allow_shorts_is_accepted():
    assert params_model("ema_cross").model_validate({"ema_allow_shorts": True}).allow_shorts


def test_ema_cross_stop_is_stop_pct_from_the_close_and_reason_has_the_emas():
    bars = _data.day(DAY)
    a = _data.arrays(bars)
    fast, slow = talib.EMA(a["close"], 20), talib.EMA(a["close"], 50)
    got = run(build_strategy("ema_cross", "BTCUSDT", {"stop_pct": 0.004, "allow_shorts": True}),
              bars)
    by_time = {int(t): i for i, t in enumerate(a["close_time"])}
    for s in got:
        i = by_time[s.close_time]
        assert s.price == a["close"][i]
        sign = -1 if s.action is Action.ENTER_LONG else 1
        assert s.stop_price == pytest.approx(s.price * (1 + sign * 0.004), rel=1e-12)
        assert s.stop_distance == pytest.approx(s.price * 0.004, rel=1e-9)
        assert s.reason["ema_fast"] == pytest.approx(fast[i], rel=1e-9)
        assert s.reason["ema_slow"] == pytest.approx(slow[i], rel=1e-9)


# --------------------------------------------------------------------------- momentum
MOMENTUM_NO_FILTERS = {"funding_long_max": None, "funding_short_min": None,
                       "no_trade_funding_window_s": 0}


def momentum_breakouts(bars, period=20, k=0.5, atr_period=14, min_pct=0.001):
    """(index, direction) of every close beyond the prior range ± k·ATR_eff, and ATR_eff."""
    a = _data.arrays(bars)
    c = a["close"]
    atr = talib.ATR(a["high"], a["low"], c, atr_period)
    eff = np.where(np.isnan(atr), np.nan, np.maximum(atr, c * min_pct))
    hi, lo = prior(talib.MAX(a["high"], period)), prior(talib.MIN(a["low"], period))
    up = c > hi + k * eff
    down = c < lo - k * eff
    idx = np.flatnonzero(up | down)
    return a, eff, [(int(i), 1 if up[i] else -1) for i in idx]


def expected_momentum(a, events, long_blocked=lambda i: False, short_blocked=lambda i: False):
    """Rules of the seed's momentum bot applied to the breakout events, one by one."""
    pos, out = 0, []
    for i, d in events:
        if d == pos:
            continue
        blocked = long_blocked(i) if d > 0 else short_blocked(i)
        if blocked:
            if pos != 0:
                out.append((int(a["close_time"][i]), "exit"))
                pos = 0
            continue
        out.append((int(a["close_time"][i]), "enter_long" if d > 0 else "enter_short"))
        pos = d
    return out


def test_momentum_enters_on_atr_breakouts_of_the_prior_range():
    bars = _data.bars("BTCUSDT")
    a, _, events = momentum_breakouts(bars)
    got = run(build_strategy("momentum", "BTCUSDT", MOMENTUM_NO_FILTERS), bars)
    expected = expected_momentum(a, events)
    assert len(expected) >= 50
    assert keys(got) == expected


def test_momentum_stop_and_trailing_distance_are_atr_multiples_with_the_pct_floor():
    bars = _data.bars("BTCUSDT")
    a, eff, _ = momentum_breakouts(bars, min_pct=0.0008)
    params = dict(MOMENTUM_NO_FILTERS, atr_stop_mult=1.5, atr_trail_mult=2.5,
                  atr_min_pct_by_symbol={"BTCUSDT": 0.0008})
    got = run(build_strategy("momentum", "BTCUSDT", params), bars)
    by_time = {int(t): i for i, t in enumerate(a["close_time"])}
    floored = 0
    for s in got:
        i = by_time[s.close_time]
        assert s.stop_distance == pytest.approx(1.5 * eff[i], rel=1e-9)
        assert s.trail_distance == pytest.approx(2.5 * eff[i], rel=1e-9)
        assert (s.stop_price < s.price) == (s.action is Action.ENTER_LONG)
        floored += s.reason["atr"] < s.reason["atr_effective"]
    assert floored > 0  # the 0.08 % floor mattered on quiet bars


def test_momentum_no_trade_window_blocks_entries_near_00_08_16_utc():
    bars = _data.bars("BTCUSDT")
    a, _, events = momentum_breakouts(bars)
    window_s = 1800
    params = dict(MOMENTUM_NO_FILTERS, no_trade_funding_window_s=window_s)
    got = run(build_strategy("momentum", "BTCUSDT", params), bars)

    def in_window(i):
        return near_funding_time(int(a["close_time"][i]), window_s)

    expected = expected_momentum(a, events, long_blocked=in_window, short_blocked=in_window)
    assert any(in_window(i) for i, _ in events)
    assert keys(got) == expected
    entries = [s for s in got if s.action is not Action.EXIT]
    assert entries and not any(near_funding_time(s.close_time, window_s) for s in entries)


def test_no_trade_window_edges_are_inclusive_and_follow_the_bar_close_time():
    eight = 1746691200000  # 2025-05-08 08:00:00 UTC
    assert in_no_trade_window(eight - 300_000, 300)
    assert not in_no_trade_window(eight - 300_001, 300)
    assert in_no_trade_window(eight + 300_000, 300)
    assert not in_no_trade_window(eight + 300_001, 300)
    assert in_no_trade_window(eight - 1, 60)  # the 07:59 bar closes at 07:59:59.999
    assert not in_no_trade_window(eight + 4 * 3_600_000, 14_399)  # 12:00 is 4 h from both
    assert not in_no_trade_window(eight, 0)  # 0 disables the window


def test_momentum_funding_filter_blocks_longs_when_funding_is_above_funding_long_max():
    bars = _data.bars("BTCUSDT")
    funding = _data.funding("BTCUSDT")
    a, _, events = momentum_breakouts(bars)
    rate = latest_funding_at(a["close_time"], funding)
    params = dict(MOMENTUM_NO_FILTERS, funding_long_max=0.00005)
    got = run(build_strategy("momentum", "BTCUSDT", params), bars, funding)
    expected = expected_momentum(a, events, long_blocked=lambda i: rate[i] > 0.00005)
    assert sum(1 for i, d in events if d > 0 and rate[i] > 0.00005) > 10
    assert keys(got) == expected
    for s in got:
        if s.action is Action.ENTER_LONG:
            assert s.reason["funding_rate"] <= 0.00005


def test_momentum_funding_filter_blocks_shorts_when_funding_is_below_funding_short_min():
    bars = _data.bars("BTCUSDT")
    funding = _data.funding("BTCUSDT")
    a, _, events = momentum_breakouts(bars)
    rate = latest_funding_at(a["close_time"], funding)
    params = dict(MOMENTUM_NO_FILTERS, funding_short_min=0.00002)
    got = run(build_strategy("momentum", "BTCUSDT", params), bars, funding)
    expected = expected_momentum(a, events, short_blocked=lambda i: rate[i] < 0.00002)
    assert sum(1 for i, d in events if d < 0 and rate[i] < 0.00002) > 10
    assert keys(got) == expected


def test_momentum_percentile_mode_blocks_longs_above_the_lookback_percentile():
    bars = _data.bars("BTCUSDT")
    funding = _data.funding("BTCUSDT")
    a, _, events = momentum_breakouts(bars)
    times = np.array([t for t, _ in funding]) // 60_000 * 60_000  # minute-snapped
    rates = np.array([r for _, r in funding])
    lookback = 7 * _data.DAY_MS
    j = np.searchsorted(times, a["close_time"], side="right") - 1
    limit = np.array([np.percentile(rates[(times > times[k] - lookback) & (times <= times[k])],
                                    75) for k in j])
    current = rates[j]
    params = dict(MOMENTUM_NO_FILTERS, use_funding_percentiles=True,
                  funding_pctl_lookback_days=7, funding_long_max_pctl=75,
                  funding_short_min_pctl=0)
    got = run(build_strategy("momentum", "BTCUSDT", params), bars, funding)
    expected = expected_momentum(a, events,
                                 long_blocked=lambda i: current[i] > limit[i] + 1e-15)
    assert sum(1 for i, d in events if d > 0 and current[i] > limit[i]) > 5
    assert keys(got) == expected
    longs = [s for s in got if s.action is Action.ENTER_LONG]
    for s in longs:
        i = int(np.searchsorted(a["close_time"], s.close_time))
        assert s.reason["funding_limit"] == pytest.approx(limit[i], rel=1e-9)


def test_momentum_without_shorts_exits_a_long_on_a_downside_breakout():
    bars = _data.bars("BTCUSDT")
    a, _, events = momentum_breakouts(bars)
    got = run(build_strategy("momentum", "BTCUSDT",
                             dict(MOMENTUM_NO_FILTERS, allow_shorts=False)), bars)
    pos, expected = 0, []
    for i, d in events:
        if d > 0 and pos == 0:
            expected.append((int(a["close_time"][i]), "enter_long"))
            pos = 1
        elif d < 0 and pos == 1:
            expected.append((int(a["close_time"][i]), "exit"))
            pos = 0
    assert keys(got) == expected
    assert not any(s.action is Action.ENTER_SHORT for s in got)


# --------------------------------------------------------------------------- keltner
def test_keltner_breakout_enters_when_the_close_crosses_ema20_plus_minus_k_atr14():
    bars = _data.day(DAY)
    a = _data.arrays(bars)
    c = a["close"]
    ema, atr = talib.EMA(c, 20), talib.ATR(a["high"], a["low"], c, 14)
    upper, lower = ema + 1.5 * atr, ema - 1.5 * atr
    defined = ~np.isnan(upper) & ~np.isnan(prior(upper))
    above, below = c > upper, c < lower
    cross_up = defined & above & ~prior(above.astype(float)).astype(bool)
    cross_down = defined & below & ~prior(below.astype(float)).astype(bool)
    events = [(int(i), 1 if cross_up[i] else -1) for i in np.flatnonzero(cross_up | cross_down)]
    expected = [(int(a["close_time"][i]), "enter_long" if d > 0 else "enter_short")
                for i, d in dedupe_directions(events)]
    got = run(build_strategy("keltner_breakout", "BTCUSDT", {"keltner_mult": 1.5}), bars)
    assert len(expected) >= 10
    assert keys(got) == expected
    for s in got:
        i = int(np.searchsorted(a["close_time"], s.close_time))
        assert s.reason["upper"] == pytest.approx(upper[i], rel=1e-9)
        assert s.stop_distance == pytest.approx(2.0 * atr[i], rel=1e-9)


def test_keltner_breakout_after_a_stop_out_waits_for_a_fresh_cross_instead_of_chasing():
    bars = _data.day(DAY)
    a = _data.arrays(bars)
    c = a["close"]
    ema, atr = talib.EMA(c, 20), talib.ATR(a["high"], a["low"], c, 14)
    upper, lower = ema + 2.0 * atr, ema - 2.0 * atr
    defined = ~np.isnan(upper) & ~np.isnan(prior(upper))
    above, below = c > upper, c < lower
    cross_up = defined & above & ~np.concatenate(([False], above[:-1]))
    cross_down = defined & below & ~np.concatenate(([False], below[:-1]))
    expected = [(int(a["close_time"][i]), "enter_long" if cross_up[i] else "enter_short")
                for i in np.flatnonzero(cross_up | cross_down)]
    strategy = build_strategy("keltner_breakout", "BTCUSDT")
    got = []
    for bar in bars:
        s = strategy.on_bar(bar)
        if s is not None:
            got.append(s)
            strategy.on_fill("flat", s.stop_price)  # stopped out on the same bar
    assert len(expected) > len(dedupe_directions(
        [(i, 1 if cross_up[i] else -1) for i in np.flatnonzero(cross_up | cross_down)]))
    assert keys(got) == expected


# --------------------------------------------------------------------------- donchian
def test_donchian_breakout_follows_the_turtle_entry_and_exit_channels():
    bars = _data.day(DAY)
    a = _data.arrays(bars)
    h, lo, c = a["high"], a["low"], a["close"]
    e_hi, e_lo = prior(talib.MAX(h, 20)), prior(talib.MIN(lo, 20))
    x_hi, x_lo = prior(talib.MAX(h, 10)), prior(talib.MIN(lo, 10))
    atr = talib.ATR(h, lo, c, 20)
    pos, expected = 0, []
    for i in range(len(c)):
        if np.isnan(e_hi[i]) or np.isnan(atr[i]):
            continue
        t = int(a["close_time"][i])
        if c[i] > e_hi[i] and pos != 1:
            expected.append((t, "enter_long"))
            pos = 1
        elif c[i] < e_lo[i] and pos != -1:
            expected.append((t, "enter_short"))
            pos = -1
        elif pos == 1 and c[i] < x_lo[i] and not c[i] < e_lo[i]:
            expected.append((t, "exit"))
            pos = 0
        elif pos == -1 and c[i] > x_hi[i] and not c[i] > e_hi[i]:
            expected.append((t, "exit"))
            pos = 0
    got = run(build_strategy("donchian_breakout", "BTCUSDT"), bars)
    assert sum(1 for _, act in expected if act == "exit") >= 5
    assert keys(got) == expected


# --------------------------------------------------------------------------- mean reversion
@pytest.mark.parametrize("allow_shorts", [False, True])
def test_mean_reversion_fades_band_closes_with_rsi_extremes_and_exits_at_the_middle(allow_shorts):
    bars = _data.bars("BTCUSDT")
    a = _data.arrays(bars)
    c = a["close"]
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, matype=0)
    rsi = talib.RSI(c, 14)
    atr = talib.ATR(a["high"], a["low"], c, 14)
    pos, expected = 0, []
    for i in range(len(c)):
        if np.isnan(upper[i]) or np.isnan(rsi[i]) or np.isnan(atr[i]):
            continue
        t = int(a["close_time"][i])
        if pos == 0 and c[i] < lower[i] and rsi[i] < 30:
            expected.append((t, "enter_long"))
            pos = 1
        elif pos == 0 and allow_shorts and c[i] > upper[i] and rsi[i] > 70:
            expected.append((t, "enter_short"))
            pos = -1
        elif (pos == 1 and c[i] >= middle[i]) or (pos == -1 and c[i] <= middle[i]):
            expected.append((t, "exit"))
            pos = 0
    got = run(build_strategy("mean_reversion", "BTCUSDT", {"allow_shorts": allow_shorts}), bars)
    assert len(expected) >= 50
    assert keys(got) == expected
    for s in got:
        if s.action is not Action.EXIT:
            i = int(np.searchsorted(a["close_time"], s.close_time))
            assert s.take_profit_r[0] == pytest.approx(abs(middle[i] - c[i]) / (2 * atr[i]),
                                                       rel=1e-6)


# --------------------------------------------------------------------------- trailing
@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
def test_trailing_stop_only_ever_tightens_over_a_real_week(side):
    strategy = build_strategy("momentum", "BTCUSDT")
    stop = None
    moves = stops_hit = 0
    for bar in _data.bars("BTCUSDT"):
        if stop is not None and (bar.low <= stop if side is Side.LONG else bar.high >= stop):
            stop = None  # stopped out; the next position starts a new stop
            stops_hit += 1
        strategy.on_bar(bar)
        new = strategy.trail_stop(side, stop, bar)
        if new is None:
            continue
        if stop is not None:
            assert (new > stop) if side is Side.LONG else (new < stop)
            moves += 1
        stop = new
    assert moves > 1000 and stops_hit > 10


def test_trailing_stop_is_close_minus_atr_trail_mult_times_atr_and_ignores_a_falling_price():
    bars = _data.bars("BTCUSDT")[:300]
    strategy = build_strategy("momentum", "BTCUSDT", {"atr_trail_mult": 2.0})
    for bar in bars:
        strategy.on_bar(bar)
    a = _data.arrays(bars)
    atr = talib.ATR(a["high"], a["low"], a["close"], 14)[-1]
    last = bars[-1]
    eff = max(atr, last.close * 0.001)
    assert strategy.trail_stop("long", None, last) == pytest.approx(last.close - 2 * eff)
    assert strategy.trail_stop("long", last.close - eff, last) is None  # already tighter
    assert strategy.trail_stop("short", last.close + 3 * eff, last) == pytest.approx(
        last.close + 2 * eff)
    lower = last._replace(close=last.close - 5 * eff, close_time=last.close_time + 60_000)
    assert strategy.trail_stop("long", last.close - 2 * eff, lower) is None


def test_trailing_stop_refuses_a_flat_side():
    strategy = build_strategy("momentum", "BTCUSDT")
    with pytest.raises(ValueError, match="long or short"):
        strategy.trail_stop("flat", None, _data.bars()[0])


def test_ema_cross_does_not_trail_its_fixed_stop():
    strategy = build_strategy("ema_cross", "BTCUSDT")
    bars = _data.day(DAY)
    run(strategy, bars)
    assert strategy.trail_stop("long", 1.0, bars[-1]) is None


# --------------------------------------------------------------------------- params
@pytest.mark.parametrize("name,params,field", [
    ("ema_cross", {"ema_fast": 50, "ema_slow": 20}, "ema_slow"),
    ("ema_cross", {"ema_fsat": 5}, "ema_fsat"),
    ("ema_cross", {"stop_pct": 0}, "stop_pct"),
    ("ema_cross", {"ema_fast": "fast"}, "ema_fast"),
    ("momentum", {"atr_stop_mult": -1}, "atr_stop_mult"),
    ("momentum", {"funding_long_max_pctl": 120}, "funding_long_max_pctl"),
    ("momentum", {"no_trade_funding_window_s": -5}, "no_trade_funding_window_s"),
    ("momentum", {"atr_min_pct_by_symbol": {"btcusdt": 0.001}}, "atr_min_pct_by_symbol"),
    ("keltner_breakout", {"keltner_mult": 0}, "keltner_mult"),
    ("donchian_breakout", {"entry_period": 10, "exit_period": 20}, "exit_period"),
    ("mean_reversion", {"rsi_oversold": 60, "rsi_overbought": 40}, "rsi_overbought"),
    ("mean_reversion", {"bb_std": -2}, "bb_std"),
])
def test_bad_params_are_refused_with_an_error_naming_the_field(name, params, field):
    with pytest.raises(pydantic.ValidationError) as info:
        params_model(name).model_validate(params)
    errors = info.value.errors()
    assert [e["loc"][0] for e in errors] == [field]


def test_params_models_are_frozen():
    p = params_model("ema_cross")()
    with pytest.raises(pydantic.ValidationError):
        p.ema_fast = 3


def test_every_params_field_has_a_description():
    for name in STRATEGIES:
        for field, info in params_model(name).model_fields.items():
            assert info.description, f"{name}.{field} has no description"


def test_unknown_strategy_name_lists_the_known_ones():
    with pytest.raises(UnknownStrategyError, match="choose one of donchian_breakout, ema_cross"):
        params_model("ema_crossover")


def test_registry_has_the_five_seed_strategies():
    assert sorted(STRATEGIES) == ["donchian_breakout", "ema_cross", "keltner_breakout",
                                  "mean_reversion", "momentum"]


def test_symbol_must_be_an_upper_case_exchange_id():
    with pytest.raises(ValueError, match="symbol"):
        build_strategy("ema_cross", "btc/usdt")


# --------------------------------------------------------------------------- lifecycle
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_bars_give_the_same_signals(name):
    bars = _data.bars("ETHUSDT")
    funding = _data.funding("ETHUSDT")
    first = build_strategy(name, "ETHUSDT")
    a = [s.to_dict() for s in run(first, bars, funding)]
    b = [s.to_dict() for s in run(build_strategy(name, "ETHUSDT"), bars, funding)]
    first.reset()
    c = [s.to_dict() for s in run(first, bars, funding)]
    assert a and a == b == c


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_redelivered_bar_is_ignored(name):
    bars = _data.day(DAY, "SOLUSDT")
    once = keys(run(build_strategy(name, "SOLUSDT"), bars))
    twice = keys(run(build_strategy(name, "SOLUSDT"), [b for b in bars for _ in (0, 1)]))
    assert once and once == twice


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_ready_after_exactly_warmup_bars(name):
    strategy = build_strategy(name, "BTCUSDT")
    bars = _data.bars()
    n = strategy.warmup_bars
    for bar in bars[: n - 1]:
        assert strategy.on_bar(bar) is None
    assert not strategy.ready
    strategy.on_bar(bars[n - 1])
    assert strategy.ready


def test_set_position_at_rehydration_means_the_held_side_is_not_entered_again():
    bars = _data.day(DAY)
    a, crosses = ema_crossings(bars, 20, 50)
    (i0, d0), (i1, d1) = crosses[0], crosses[1]
    strategy = build_strategy("ema_cross", "BTCUSDT", {"allow_shorts": True})
    assert run(strategy, bars[:i0]) == []
    strategy.set_position("long" if d0 > 0 else "short", bars[i0 - 1].close)
    got = run(strategy, bars[i0: i1 + 1])
    assert keys(got) == [(bars[i1].close_time, "enter_long" if d1 > 0 else "enter_short")]


def test_a_stop_fill_to_flat_means_no_exit_signal_and_a_fresh_entry_next_time():
    bars = _data.day(DAY)
    a, crosses = ema_crossings(bars, 20, 50)
    strategy = build_strategy("ema_cross", "BTCUSDT")
    got = []
    for bar in bars:
        s = strategy.on_bar(bar)
        if s is not None:
            got.append(s)
            strategy.on_fill("flat", s.stop_price)  # every entry is stopped out at once
    assert keys(got) == [(int(a["close_time"][i]), "enter_long") for i, d in crosses if d > 0]
    assert strategy.position is Side.FLAT


def test_a_refused_entry_reported_as_flat_lets_mean_reversion_enter_again():
    bars = _data.bars("BTCUSDT")
    normal = [s for s in run(build_strategy("mean_reversion", "BTCUSDT"), bars)
              if s.action is Action.ENTER_LONG]
    strategy = build_strategy("mean_reversion", "BTCUSDT")
    got = []
    for bar in bars:
        s = strategy.on_bar(bar)
        if s is not None:
            got.append(s)
            strategy.set_position(Side.FLAT)  # the risk service refused the order
    assert all(s.action is Action.ENTER_LONG for s in got)
    assert len(got) > len(normal)


def test_bad_position_and_funding_input_is_refused_and_changes_nothing():
    strategy = build_strategy("momentum", "BTCUSDT")
    strategy.on_funding(0.0001, 1746403200000)
    with pytest.raises(ValueError, match="side must be one of"):
        strategy.set_position("sideways")
    with pytest.raises(ValueError, match="funding rate"):
        strategy.on_funding(float("nan"), 1746432000000)
    with pytest.raises(ValueError, match="mark price"):
        strategy.on_mark(-1.0, 1746432000000)
    state = strategy.state()
    assert state["position"] == "flat"
    assert state["funding_rate"] == 0.0001
    assert state["indicators"]["funding_window_events"] == 1


def test_funding_and_mark_accept_numpy_scalars_from_a_backtest_array():
    strategy = build_strategy("momentum", "BTCUSDT")
    strategy.on_funding(np.float64(0.0001), np.int64(1746403200000))
    strategy.on_mark(np.float64(94_000.5), np.int64(1746403200000))
    state = json.loads(json.dumps(strategy.state()))
    assert (state["funding_rate"], state["funding_time"]) == (0.0001, 1746403200000)
    assert state["mark_price"] == 94_000.5


def test_signal_to_dict_is_json_ready_and_explains_itself():
    strategy = build_strategy("momentum", "BTCUSDT")
    signal = run(strategy, _data.bars(), _data.funding())[0]
    d = json.loads(json.dumps(signal.to_dict()))
    assert d["action"] in ("enter_long", "enter_short")
    assert d["strategy"] == "momentum"
    assert d["stop_distance"] > 0
    assert {"rule", "close", "atr", "atr_effective", "funding_rate"} <= d["reason"].keys()
    json.dumps(strategy.state())


def test_bar_from_binance_kline_parses_strings_and_refuses_bad_fields():
    k = {"t": 1746403200000, "T": 1746403259999, "s": "BTCUSDT", "i": "1m", "o": "94230.2",
         "c": "94250.0", "h": "94270.5", "l": "94200.1", "v": "120.5", "x": True}
    assert Bar.from_binance_kline(k) == Bar(1746403200000, 94230.2, 94270.5, 94200.1,
                                            94250.0, 120.5, 1746403259999)
    with pytest.raises(ValueError, match="high/low"):
        Bar.from_binance_kline(dict(k, h="94000"))
    with pytest.raises(ValueError, match="'c'"):
        Bar.from_binance_kline({kk: v for kk, v in k.items() if kk != "c"})
    with pytest.raises(ValueError, match="close_time"):
        Bar.from_binance_kline(dict(k, T=1746403200000))
    with pytest.raises(ValueError, match="field 'v' is not a number"):
        Bar.from_binance_kline(dict(k, v="lots"))


@pytest.mark.parametrize("name,params,field", [
    ("ema_cross", {"ema_fast": 60}, "ema_slow"),
    ("donchian_breakout", {"entry_period": 5}, "exit_period"),
    ("mean_reversion", {"rsi_oversold": 80}, "rsi_overbought"),
])
def test_a_pair_rule_holds_when_the_other_side_is_left_at_its_default(name, params, field):
    from pydantic import ValidationError

    from tradefleet.workers.strategies import params_model

    with pytest.raises(ValidationError, match=field):
        params_model(name).model_validate(params)
