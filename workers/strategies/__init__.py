"""Trading strategies: pure, deterministic state machines — closed bars in, signals out.

The same objects run in the live bot worker (fed closed klines from ``md.*`` subjects), in
paper trading and in the in-process backtester. No I/O, no clock reads, no globals, no
asyncio: time is the bar's ``close_time``, so a replay gives the same signals as the run.

Interface (:class:`Strategy`)::

    strategy = build_strategy("ema_cross", "BTCUSDT", {"ema_fast": 20, "ema_slow": 50})
    strategy.warmup_bars                  # bars to replay before a signal is possible
    strategy.on_funding(rate, funding_time_ms)   # fundingRate (fraction / 8 h), UTC ms
    strategy.on_mark(price, time_ms)      # mark price, USDT
    signal = strategy.on_bar(bar)         # Signal | None (None: nothing to do)
    strategy.trail_stop(side, current_stop, bar)  # tighter stop (USDT) | None, never looser
    strategy.set_position("long", entry_price)    # the exchange's truth (rehydration,
    strategy.on_fill("flat", price)               #   stop fills, refused orders)
    strategy.state()                      # JSON-ready snapshot for heartbeats / debug

- :class:`Bar` — a closed kline (open_time, open, high, low, close, volume, close_time;
  ms and USDT floats), a NamedTuple.
- :class:`Signal` — symbol, :class:`Action` (``enter_long``, ``enter_short``, ``exit``;
  an entry against an open position means reverse), ``close_time``, reference ``price``,
  protective ``stop_price`` (reduce-only STOP_MARKET; ``stop_distance`` is what sizing
  divides the risk by), ``trail_distance``, ``take_profit_r`` hints and ``reason`` (the
  indicator values and rule that fired it).
- Sizing, risk checks, order placement and rounding to exchange filters happen downstream.

Rehydration: replay historical bars through ``on_bar``, ignore the signals, then
``set_position`` with the exchange position. ``warmup_bars`` is the minimum; EMA, RSI and
ATR have infinite memory (Wilder's ATR(14) forgets a seed difference by (13/14)^n), so
replaying about 15× the longest period makes the indicators agree with a long-running
instance to ~1e-6. A bar whose close time is not after the last one is ignored, so
overlapping history and live feeds are harmless.

Registry: :data:`STRATEGIES` maps a name to its class; :func:`params_model` gives the
frozen pydantic params model (unknown names refused, naming the field) the TradingBot
spec validates ``strategy.params`` with.

Params (defaults):

- ``ema_cross``: ema_fast=20, ema_slow=50 (> ema_fast), allow_shorts=False (alias
  ema_allow_shorts), stop_pct=0.01.
- ``momentum``: breakout_period=20, breakout_atr_mult=0.5, atr_period=14,
  atr_stop_mult=2.0, atr_trail_mult=3.0, atr_min_pct=0.001, atr_min_pct_by_symbol={},
  allow_shorts=True, funding_long_max=0.0005, funding_short_min=-0.0005,
  use_funding_percentiles=False, funding_pctl_lookback_days=14, funding_long_max_pctl=90,
  funding_short_min_pctl=10, no_trade_funding_window_s=300.
- ``keltner_breakout``: ema_period=20, atr_period=14, keltner_mult=2.0, allow_shorts=True,
  atr_stop_mult=2.0, atr_trail_mult=None.
- ``donchian_breakout``: entry_period=20, exit_period=10 (<= entry_period),
  allow_shorts=True, atr_period=20, atr_stop_mult=2.0, atr_trail_mult=None.
- ``mean_reversion``: rsi_period=14, rsi_oversold=30, rsi_overbought=70 (> oversold),
  bb_period=20, bb_std=2.0, allow_shorts=False, atr_period=14, atr_stop_mult=2.0.
"""

from .base import Strategy, StrategyParams
from .donchian_breakout import DonchianBreakout, DonchianBreakoutParams
from .ema_cross import EmaCross, EmaCrossParams
from .funding import FUNDING_INTERVAL_MS, FundingFilter, in_no_trade_window, ms_to_nearest_funding
from .keltner_breakout import KeltnerBreakout, KeltnerBreakoutParams
from .mean_reversion import MeanReversion, MeanReversionParams
from .momentum import Momentum, MomentumParams
from .registry import STRATEGIES, UnknownStrategyError, build_strategy, params_model
from .types import Action, Bar, Side, Signal

__all__ = [
    "FUNDING_INTERVAL_MS",
    "STRATEGIES",
    "Action",
    "Bar",
    "DonchianBreakout",
    "DonchianBreakoutParams",
    "EmaCross",
    "EmaCrossParams",
    "FundingFilter",
    "KeltnerBreakout",
    "KeltnerBreakoutParams",
    "MeanReversion",
    "MeanReversionParams",
    "Momentum",
    "MomentumParams",
    "Side",
    "Signal",
    "Strategy",
    "StrategyParams",
    "UnknownStrategyError",
    "build_strategy",
    "in_no_trade_window",
    "ms_to_nearest_funding",
    "params_model",
]
