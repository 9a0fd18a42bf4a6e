"""Throughput of the strategy layer: bars/s of each strategy's ``on_bar`` on real 1m klines.

Feeds the 72,000 BTCUSDT one-minute bars of ``../shared/data/binance-um/klines`` (falls back
to the one-week sample in ``data/binance-um/klines``) through every registered strategy,
``--repeats`` times each on a fresh instance, and reports the best and median bars/s of the
indicator + strategy part alone (bars are parsed before timing; no matching, no I/O). Also
times each indicator's ``update`` on its own.

The backtester's budget is >= 500,000 bars/s including matching (2 µs/bar), so the
strategy part of ``ema_cross(20, 50)`` must stay well above 1,000,000 bars/s.

Usage: ``.venv/bin/python bench/strategies.py [--repeats 7] [--data PATH] [--symbol BTCUSDT]``
Writes ``bench/results/strategies.json``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tradefleet.workers import indicators as ind
from tradefleet.workers.strategies import STRATEGIES, Bar, build_strategy

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "binance-um" / "klines"
LOCAL = ROOT / "data" / "binance-um" / "klines"
RESULTS = ROOT / "bench" / "results" / "strategies.json"

CASES: list[tuple[str, str, dict]] = [
    ("ema_cross(20,50)", "ema_cross", {"ema_fast": 20, "ema_slow": 50}),
    ("ema_cross(20,50) shorts", "ema_cross", {"ema_fast": 20, "ema_slow": 50,
                                              "allow_shorts": True}),
    *((name, name, {}) for name in sorted(STRATEGIES) if name != "ema_cross"),
]


def find_klines(symbol: str, data: Path | None) -> Path:
    """The symbol's 1m kline file: ``--data`` if given, else the shared set, else the sample."""
    for folder in ([data] if data else [SHARED, LOCAL]):
        hits = sorted(folder.glob(f"{symbol}-1m-*.csv.gz")) if folder.is_dir() else []
        if hits:
            return hits[-1]
    raise SystemExit(f"no {symbol} 1m klines under {data or f'{SHARED} or {LOCAL}'}")


def load_bars(path: Path) -> list[Bar]:
    """All bars of a ``open_time,open,high,low,close,volume,close_time`` csv.gz, in order."""
    with gzip.open(path, "rt", newline="") as fh:
        rows = csv.reader(fh)
        next(rows)
        return [Bar(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                    float(r[5]), int(r[6])) for r in rows]


def time_runs(run: Callable[[], int], n_bars: int, repeats: int) -> dict:
    """Best / median bars/s over ``repeats`` runs of ``run`` (which returns a signal count).

    Wall-clock (``perf_counter``) is the figure; CPU time of this process
    (``process_time``) is reported too, since on a shared machine other processes stretch
    wall-clock time without changing the work done per bar.
    """
    rates, cpu_rates, signals = [], [], 0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        signals = run()
        c1, t1 = time.process_time(), time.perf_counter()
        rates.append(n_bars / (t1 - t0))
        cpu_rates.append(n_bars / max(c1 - c0, 1e-9))
    best = max(rates)
    return {"bars_per_s_best": round(best), "bars_per_s_median": round(statistics.median(rates)),
            "bars_per_s_cpu_best": round(max(cpu_rates)),
            "ns_per_bar_best": round(1e9 / best, 1), "signals": signals}


def strategy_run(name: str, symbol: str, params: dict, bars: list[Bar]) -> Callable[[], int]:
    def run() -> int:
        on_bar = build_strategy(name, symbol, params).on_bar
        n = 0
        for bar in bars:
            if on_bar(bar) is not None:
                n += 1
        return n
    return run


def indicator_runs(bars: list[Bar]) -> dict[str, Callable[[], int]]:
    closes = [b.close for b in bars]
    hlc = [(b.high, b.low, b.close) for b in bars]
    hl = [(b.high, b.low) for b in bars]

    def on_close(make):
        def run() -> int:
            update = make().update
            for c in closes:
                update(c)
            return 0
        return run

    def on_hlc(make):
        def run() -> int:
            update = make().update
            for h, lo, c in hlc:
                update(h, lo, c)
            return 0
        return run

    def on_hl(make):
        def run() -> int:
            update = make().update
            for h, lo in hl:
                update(h, lo)
            return 0
        return run

    return {
        "EMA(20)": on_close(lambda: ind.EMA(20)),
        "SMA(20)": on_close(lambda: ind.SMA(20)),
        "RSI(14)": on_close(lambda: ind.RSI(14)),
        "RollingStdDev(20)": on_close(lambda: ind.RollingStdDev(20)),
        "BollingerBands(20,2)": on_close(lambda: ind.BollingerBands(20, 2.0)),
        "ATR(14)": on_hlc(lambda: ind.ATR(14)),
        "KeltnerChannel(20,14,2)": on_hlc(lambda: ind.KeltnerChannel(20, 14, 2.0)),
        "DonchianChannel(20)": on_hl(lambda: ind.DonchianChannel(20)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--data", type=Path, default=None, help="folder with SYMBOL-1m-*.csv.gz")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    path = find_klines(args.symbol, args.data)
    bars = load_bars(path)
    n = len(bars)
    print(f"{n:,} {args.symbol} 1m bars from {path}; best of {args.repeats} runs\n")

    strategies = {}
    print(f"{'strategy':<28}{'bars/s best':>14}{'median':>14}{'CPU-time best':>15}"
          f"{'ns/bar':>9}{'signals':>9}")
    for label, name, params in CASES:
        r = time_runs(strategy_run(name, args.symbol, params, bars), n, args.repeats)
        strategies[label] = {"strategy": name, "params": params, **r}
        print(f"{label:<28}{r['bars_per_s_best']:>14,}{r['bars_per_s_median']:>14,}"
              f"{r['bars_per_s_cpu_best']:>15,}{r['ns_per_bar_best']:>9}{r['signals']:>9}")

    indicators = {}
    print(f"\n{'indicator update':<28}{'updates/s best':>14}{'median':>14}{'CPU-time best':>15}"
          f"{'ns/upd':>9}")
    for label, run in indicator_runs(bars).items():
        r = time_runs(run, n, args.repeats)
        r.pop("signals")
        indicators[label] = r
        print(f"{label:<28}{r['bars_per_s_best']:>14,}{r['bars_per_s_median']:>14,}"
              f"{r['bars_per_s_cpu_best']:>15,}{r['ns_per_bar_best']:>9}")

    headline = strategies["ema_cross(20,50)"]["bars_per_s_best"]
    headline_cpu = strategies["ema_cross(20,50)"]["bars_per_s_cpu_best"]
    target = 1_000_000
    print(f"\nema_cross(20,50): {headline:,} bars/s wall-clock, {headline_cpu:,} bars/s of CPU "
          f"time (target > {target:,}: {'met' if headline > target else 'NOT met'}); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    result = {
        "benchmark": "strategies",
        "data": str(path),
        "symbol": args.symbol,
        "bars": n,
        "repeats": args.repeats,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "ema_cross_20_50_bars_per_s": headline,
        "ema_cross_20_50_bars_per_s_cpu": headline_cpu,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "target_bars_per_s": target,
        "target_met": headline > target,
        "strategies": strategies,
        "indicators": indicators,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
