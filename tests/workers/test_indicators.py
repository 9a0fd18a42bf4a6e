"""Incremental indicators agree with TA-Lib / talipp on real Binance 1m data (1e-9 relative)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib
from talipp.indicators import BB as TalippBB
from talipp.indicators import StdDev as TalippStdDev

from tests.workers import _data
from tradefleet.workers.indicators import (
    ATR,
    EMA,
    RSI,
    SMA,
    BollingerBands,
    DonchianChannel,
    KeltnerChannel,
    RollingPercentile,
    RollingStdDev,
    TrueRange,
)

REL = 1e-9


@pytest.fixture(scope="module")
def btc() -> dict[str, np.ndarray]:
    """All 10,080 BTCUSDT one-minute bars of the bundled week."""
    return _data.arrays(_data.bars("BTCUSDT"))


def assert_matches(ours: list[float | None], oracle: np.ndarray, rel: float = REL) -> None:
    """Same warmup (None exactly where the oracle has NaN) and values within ``rel``."""
    got = np.array([np.nan if v is None else v for v in ours], dtype=np.float64)
    ours_warm = np.isnan(got)
    oracle_warm = np.isnan(oracle)
    assert ours_warm.sum() == oracle_warm.sum(), (
        f"warmup differs: {ours_warm.sum()} bars without a value, oracle {oracle_warm.sum()}")
    assert np.array_equal(ours_warm, oracle_warm)
    ok = ~oracle_warm
    err = np.abs(got[ok] - oracle[ok]) / np.maximum(np.abs(oracle[ok]), 1e-300)
    worst = int(np.argmax(err))
    assert err[worst] <= rel, f"relative error {err[worst]:.3e} at bar {np.flatnonzero(ok)[worst]}"


@pytest.mark.parametrize("period", [2, 12, 20, 50, 200])
def test_ema_matches_talib_ema(btc, period):
    ema = EMA(period)
    assert_matches([ema.update(x) for x in btc["close"]], talib.EMA(btc["close"], period))


@pytest.mark.parametrize("period", [1, 20, 100])
def test_sma_matches_talib_sma(btc, period):
    sma = SMA(period)
    assert_matches([sma.update(x) for x in btc["close"]], talib.SMA(btc["close"], period))


def test_rolling_stddev_matches_exact_two_pass_talipp_stddev(btc):
    closes = btc["close"]
    sd = RollingStdDev(20)
    oracle = np.array([np.nan if v is None else v for v in TalippStdDev(20, list(closes))])
    assert_matches([sd.update(x) for x in closes], oracle)


def test_rolling_stddev_matches_talib_population_stddev(btc):
    sd = RollingStdDev(20)
    assert_matches([sd.update(x) for x in btc["close"]], talib.STDDEV(btc["close"], 20, 1.0))


def test_rolling_stddev_mean_is_bit_for_bit_talib_sma(btc):
    sd = RollingStdDev(20)
    means = []
    for x in btc["close"]:
        sd.update(x)
        means.append(sd.mean)
    assert_matches(means, talib.SMA(btc["close"], 20), rel=0.0)


@pytest.mark.parametrize("period", [2, 14, 50])
def test_rsi_matches_talib_rsi(btc, period):
    rsi = RSI(period)
    assert_matches([rsi.update(x) for x in btc["close"]], talib.RSI(btc["close"], period))


def test_rsi_of_unchanging_prices_is_neutral_50_not_oversold():
    rsi = RSI(14)
    values = [rsi.update(100_000.0) for _ in range(30)]
    assert values[14:] == [50.0] * 16


def test_true_range_matches_talib_trange(btc):
    tr = TrueRange()
    out = [tr.update(h, lo, c) for h, lo, c in zip(btc["high"], btc["low"], btc["close"])]
    assert_matches(out, talib.TRANGE(btc["high"], btc["low"], btc["close"]))


@pytest.mark.parametrize("period", [1, 14, 20])
def test_atr_matches_talib_atr_wilder_smoothing(btc, period):
    atr = ATR(period)
    out = [atr.update(h, lo, c) for h, lo, c in zip(btc["high"], btc["low"], btc["close"])]
    assert_matches(out, talib.ATR(btc["high"], btc["low"], btc["close"], period))


def test_bollinger_bands_match_talipp_bb(btc):
    closes = btc["close"]
    bb = BollingerBands(20, 2.0)
    upper, middle, lower = [], [], []
    for x in closes:
        bb.update(x)
        upper.append(bb.upper)
        middle.append(bb.middle)
        lower.append(bb.lower)
    oracle = list(TalippBB(20, 2.0, list(closes)))
    for ours, field in ((upper, "ub"), (middle, "cb"), (lower, "lb")):
        assert_matches(ours, np.array([np.nan if v is None else getattr(v, field) for v in oracle]))


def test_bollinger_bands_match_talib_bbands_population_sma(btc):
    closes = btc["close"]
    bb = BollingerBands(20, 2.5)
    rows = []
    for x in closes:
        bb.update(x)
        rows.append((bb.upper, bb.middle, bb.lower))
    t_upper, t_middle, t_lower = talib.BBANDS(closes, 20, 2.5, 2.5, matype=0)
    assert_matches([r[0] for r in rows], t_upper)
    assert_matches([r[1] for r in rows], t_middle, rel=0.0)
    assert_matches([r[2] for r in rows], t_lower)


def test_keltner_channel_is_talib_ema_plus_minus_k_talib_atr(btc):
    h, lo, c = btc["high"], btc["low"], btc["close"]
    kc = KeltnerChannel(ema_period=20, atr_period=14, multiplier=1.5)
    rows = []
    for args in zip(h, lo, c):
        kc.update(*args)
        rows.append((kc.upper, kc.middle, kc.lower, kc.atr))
    ema, atr = talib.EMA(c, 20), talib.ATR(h, lo, c, 14)
    assert_matches([r[0] for r in rows], ema + 1.5 * atr)
    assert_matches([r[1] for r in rows], ema + 0.0 * atr)  # NaN until the ATR exists too
    assert_matches([r[2] for r in rows], ema - 1.5 * atr)
    assert_matches([r[3] for r in rows], atr + 0.0 * ema)


@pytest.mark.parametrize("period", [2, 10, 20, 55])
def test_donchian_channel_matches_talib_max_min_including_the_current_bar(btc, period):
    dc = DonchianChannel(period)
    upper, lower, middle = [], [], []
    for h, lo in zip(btc["high"], btc["low"]):
        dc.update(h, lo)
        upper.append(dc.upper)
        lower.append(dc.lower)
        middle.append(dc.middle)
    t_max, t_min = talib.MAX(btc["high"], period), talib.MIN(btc["low"], period)
    assert_matches(upper, t_max, rel=0.0)
    assert_matches(lower, t_min, rel=0.0)
    assert_matches(middle, (t_max + t_min) / 2.0)


def test_rolling_percentile_matches_numpy_over_real_funding_history():
    events = _data.funding("BTCUSDT")
    window_ms = 14 * _data.DAY_MS
    rp = RollingPercentile(window_ms)
    times = np.array([t for t, _ in events])
    rates = np.array([r for _, r in events])
    checked = 0
    for i, (t, rate) in enumerate(events):
        rp.update(rate, t)
        in_window = rates[(times > t - window_ms) & (times <= t)]
        assert len(rp) == len(in_window)
        for q in (0.0, 10.0, 50.0, 90.0, 97.5, 100.0):
            expected = float(np.percentile(in_window, q))
            got = rp.percentile(q)
            assert math.isclose(got, expected, rel_tol=REL, abs_tol=1e-15), (i, q, got, expected)
            checked += 1
    assert checked == 6 * len(events) == 6 * 329


def test_rolling_percentile_same_time_replaces_the_latest_value():
    rp = RollingPercentile(3_600_000)
    rp.update(0.0001, 1_000)
    rp.update(0.0003, 2_000)
    rp.update(0.0002, 2_000)  # revised estimate of the same funding event
    assert len(rp) == 2
    assert rp.latest == 0.0002
    assert rp.percentile(100) == 0.0002


def test_rolling_percentile_refuses_values_older_than_the_latest_and_keeps_its_state():
    rp = RollingPercentile(3_600_000)
    rp.update(0.0001, 5_000)
    with pytest.raises(ValueError, match="time_ms 4000 is older"):
        rp.update(0.0009, 4_000)
    assert len(rp) == 1 and rp.percentile(50) == 0.0001


@pytest.mark.parametrize("make", [EMA, SMA, RSI, ATR, RollingStdDev, DonchianChannel,
                                  lambda p: BollingerBands(p, 2.0),
                                  lambda p: KeltnerChannel(20, p, 2.0)])
@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_period_is_refused_naming_the_field(make, bad):
    with pytest.raises(ValueError, match="period"):
        make(bad)


def test_warmup_is_the_number_of_updates_before_the_first_value(btc):
    h, lo, c = btc["high"], btc["low"], btc["close"]
    cases = [(EMA(20), lambda ind, i: ind.update(c[i])),
             (SMA(20), lambda ind, i: ind.update(c[i])),
             (RSI(14), lambda ind, i: ind.update(c[i])),
             (ATR(14), lambda ind, i: ind.update(h[i], lo[i], c[i])),
             (TrueRange(), lambda ind, i: ind.update(h[i], lo[i], c[i])),
             (RollingStdDev(20), lambda ind, i: ind.update(c[i])),
             (BollingerBands(20), lambda ind, i: ind.update(c[i])),
             (KeltnerChannel(20, 14), lambda ind, i: ind.update(h[i], lo[i], c[i])),
             (DonchianChannel(20), lambda ind, i: ind.update(h[i], lo[i]))]
    for ind, feed in cases:
        for i in range(ind.warmup - 1):
            feed(ind, i)
        assert not ind.ready, type(ind).__name__
        feed(ind, ind.warmup - 1)
        assert ind.ready, type(ind).__name__


def test_reset_gives_the_same_series_again(btc):
    atr = ATR(14)
    first = [atr.update(*a) for a in zip(btc["high"][:500], btc["low"][:500], btc["close"][:500])]
    atr.reset()
    again = [atr.update(*a) for a in zip(btc["high"][:500], btc["low"][:500], btc["close"][:500])]
    assert first == again
