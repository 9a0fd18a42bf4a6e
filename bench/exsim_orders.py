"""exsim order throughput.

Section ``bench_inprocess`` (matching core, no server): replays real 1m klines of BTCUSDT,
ETHUSDT and SOLUSDT (``data/binance-um/klines``) through one :class:`Engine` with a realistic
order mix for several accounts on every bar:

* when flat: a MARKET entry (alternating long/short), a reduce-only STOP_MARKET protective
  stop 0.025 % away and a reduce-only LIMIT take-profit 0.05 % away (both often reached by
  the next bars' intra-bar paths: stop fills as taker, take-profit as maker),
* while in a position: a LIMIT entry placed far from the market and cancelled (a cancel +
  replace leg), and after three bars a reduce-only MARKET exit and cancel of what is left,

and counts orders submitted per second of wall time, *including* the kline replay, fills,
trigger walking, position and fee accounting (no listener subscribed, as in the
backtester). It measures the integer fast path (``Engine.submit`` / ``cancel`` /
``on_bar_ticks``, what the backtester uses) and the Decimal/string boundary
(``place_order`` / ``cancel_order`` / ``on_bar``, what the HTTP server uses), both per
wall second and per CPU second (robust when other processes share the machine), and the
bare bar-replay rate (bars/s with one position and a resting stop and take-profit), the
engine's share of the backtester's ≥ 500,000 bars/s budget.

Other sections (e.g. a signed round trip through ccxt against the exsim server) add a
``bench_*() -> dict`` function and list it in ``SECTIONS``; ``main()`` merges every
section's dict into ``bench/results/exsim_orders.json``.

Usage: ``.venv/bin/python bench/exsim_orders.py [--bars 3000] [--repeats 3] [--only inprocess]``
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tradefleet.exsim.engine import Engine, EngineConfig, ExchangeError
from tradefleet.exsim.engine import enums as en

ROOT = Path(__file__).resolve().parents[1]
KLINES = ROOT / "data" / "binance-um" / "klines"
RESULTS = ROOT / "bench" / "results" / "exsim_orders.json"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
#: Order size per symbol in lots (stepSize units): 0.005 BTC, 0.05 ETH, 1 SOL.
LOTS = {"BTCUSDT": 5, "ETHUSDT": 50, "SOLUSDT": 1}
ACCOUNTS = 4


def load_rows(symbol: str, bars: int) -> list[list[str]]:
    path = next(KLINES.glob(f"{symbol}-1m-*.csv.gz"))
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        out = []
        for row in reader:
            out.append(row)
            if len(out) == bars:
                break
        return out


def count_fills(e: Engine) -> int:
    """Every fill of every account, paging userTrades by trade id (1000 per page)."""
    n = 0
    for a in e.account_ids():
        for s in SYMBOLS:
            from_id = 0
            while page := e.user_trades(a, s, from_id=from_id, limit=1000):
                n += len(page)
                from_id = page[-1].id + 1
    return n


def _new_engine() -> Engine:
    e = Engine(config=EngineConfig())
    for a in range(ACCOUNTS):
        e.create_account(f"acct{a}", "1000000")
        for s in SYMBOLS:
            e.change_leverage(f"acct{a}", s, 20)
    return e


def run_fast(rows: dict[str, list[list[str]]]) -> tuple[int, int, float, float]:
    """Integer fast path. Returns (orders, fills, wall s, CPU s)."""
    e = _new_engine()
    syms = [(e.symbol_index(s), LOTS[s], [(int(r[0]), *(e.price_to_ticks(s, v) for v in r[1:5]),
                                           int(r[6])) for r in rows[s]]) for s in SYMBOLS]
    accounts = [f"acct{a}" for a in range(ACCOUNTS)]
    n_bars = min(len(b) for _, _, b in syms)
    submit, cancel = e.submit, e.cancel
    position_lots, open_ids = e.position_lots, e.open_order_ids
    BUY, MARKET, LIMIT, STOP_MARKET, GTC = en.BUY, en.MARKET, en.LIMIT, en.STOP_MARKET, en.GTC
    held = {}
    orders = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n_bars):
        for sym, lots, bars in syms:
            ot, o, h, lo, c, ct = bars[i]
            e.on_bar_ticks(sym, ot, o, h, lo, c, ct)
            step = c // 4000 or 1            # 0.025 % of the price, in ticks
            for k, acct in enumerate(accounts):
                pos = position_lots(acct, sym)
                key = (acct, sym)
                if pos == 0 or held[key] >= 3:
                    # flat, or held 3 bars: exit, clear the protective orders, re-enter
                    for oid in open_ids(acct, sym):
                        cancel(acct, oid)
                    if pos:
                        submit(acct, sym, -1 if pos > 0 else 1, MARKET, abs(pos), reduce_only=True)
                        orders += 1
                    side = BUY if (i + k) % 2 == 0 else -BUY
                    submit(acct, sym, side, MARKET, lots)
                    submit(acct, sym, -side, STOP_MARKET, lots, stop_ticks=c - side * step,
                           reduce_only=True)
                    submit(acct, sym, -side, LIMIT, lots, price_ticks=c + side * 2 * step,
                           tif=GTC, reduce_only=True)
                    orders += 3
                    held[key] = 0
                else:
                    # cancel + replace leg: a working entry far from the market
                    far = c - (1 if pos > 0 else -1) * 40 * step
                    lim = submit(acct, sym, BUY if pos > 0 else -BUY, LIMIT, lots,
                                 price_ticks=far, tif=GTC)
                    cancel(acct, lim.order_id)
                    orders += 1
                    held[key] += 1
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    fills = count_fills(e)
    return orders, fills, dt, cpu


def run_boundary(rows: dict[str, list[list[str]]]) -> tuple[int, int, float, float]:
    """Decimal/string boundary (what the HTTP server calls).
    Returns (orders, fills, wall s, CPU s)."""
    e = _new_engine()
    accounts = [f"acct{a}" for a in range(ACCOUNTS)]
    n_bars = min(len(v) for v in rows.values())
    specs = {s: e.spec(s) for s in SYMBOLS}
    held = {}
    orders = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n_bars):
        for s in SYMBOLS:
            r = rows[s][i]
            e.on_bar(s, int(r[0]), r[1], r[2], r[3], r[4], int(r[6]))
            spec = specs[s]
            last = e.last_price(s)
            qty = str(spec.step_size * LOTS[s])
            step = max(1, int(last / 4000 / spec.tick_size)) * spec.tick_size
            for k, acct in enumerate(accounts):
                amt = e.position(acct, s).position_amt
                key = (acct, s)
                if amt == 0 or held[key] >= 3:
                    for x in e.open_orders(acct, s):
                        e.cancel_order(acct, s, order_id=x.order_id)
                    if amt:
                        e.place_order(acct, s, "SELL" if amt > 0 else "BUY", "MARKET",
                                      quantity=str(abs(amt)), reduce_only="true")
                        orders += 1
                    side, other, sign = (("BUY", "SELL", 1) if (i + k) % 2 == 0
                                         else ("SELL", "BUY", -1))
                    e.place_order(acct, s, side, "MARKET", quantity=qty)
                    e.place_order(acct, s, other, "STOP_MARKET", quantity=qty,
                                  stop_price=str(last - sign * step), reduce_only="true")
                    e.place_order(acct, s, other, "LIMIT", quantity=qty, time_in_force="GTC",
                                  price=str(last + sign * 2 * step), reduce_only="true")
                    orders += 3
                    held[key] = 0
                else:
                    sign = 1 if amt > 0 else -1
                    lim = e.place_order(acct, s, "BUY" if amt > 0 else "SELL", "LIMIT",
                                        quantity=qty, price=str(last - sign * 40 * step),
                                        time_in_force="GTC")
                    e.cancel_order(acct, s, order_id=lim.order_id)
                    orders += 1
                    held[key] += 1
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    fills = count_fills(e)
    return orders, fills, dt, cpu


def run_bars(rows: list[list[str]], repeats: int) -> tuple[float, float]:
    """Bar replay alone, as the backtester drives it: one BTCUSDT position with a protective
    stop and a take-profit 20 % away resting (not reached in the sample week).
    Returns the best (bars/s wall, bars/s CPU) over ``repeats`` replays of all rows."""
    e = _new_engine()
    sym = e.symbol_index("BTCUSDT")
    bars = [(int(r[0]), *(e.price_to_ticks("BTCUSDT", v) for v in r[1:5]), int(r[6])) for r in rows]
    e.on_bar_ticks(sym, *bars[0])
    c = bars[0][4]
    e.submit("acct0", sym, en.BUY, en.MARKET, 5)
    e.submit("acct0", sym, en.SELL, en.STOP_MARKET, 5, stop_ticks=c * 80 // 100, reduce_only=True)
    e.submit("acct0", sym, en.SELL, en.LIMIT, 5, price_ticks=c * 120 // 100, tif=en.GTC,
             reduce_only=True)
    on_bar = e.on_bar_ticks
    best_wall = best_cpu = 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for ot, o, h, lo, cl, ct in bars:
            on_bar(sym, ot, o, h, lo, cl, ct)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        best_wall = max(best_wall, len(bars) / dt)
        best_cpu = max(best_cpu, len(bars) / cpu if cpu else 0.0)
    assert e.position_lots("acct0", sym) == 5, "the stop must not be reached in this window"
    return best_wall, best_cpu


def bench_inprocess(bars: int = 3000, repeats: int = 3) -> dict:
    """In-process matching throughput, best of ``repeats``: orders submitted per second of
    wall time and per CPU second (the latter is robust to other processes sharing the
    machine), for the fast path and the Decimal boundary."""
    rows = {s: load_rows(s, bars) for s in SYMBOLS}
    fast = [run_fast(rows) for _ in range(repeats)]
    small = {s: r[: max(1, bars // 3)] for s, r in rows.items()}
    boundary = [run_boundary(small) for _ in range(repeats)]
    out = {}
    for name, runs in (("", fast), ("boundary_", boundary)):
        wall = max(r[0] / r[2] for r in runs)
        cpu = max(r[0] / r[3] for r in runs)
        orders, fills = runs[0][0], runs[0][1]
        label = "fast path" if not name else "boundary "
        print(f"exsim in-process, {label}: {wall:10,.0f} orders/s wall, {cpu:10,.0f} orders/CPU-s "
              f"({orders:,} orders, {fills:,} fills per run)")
        out |= {f"inprocess_{name}orders_per_s": round(wall),
                f"inprocess_{name}orders_per_cpu_s": round(cpu),
                f"inprocess_{name}orders": orders, f"inprocess_{name}fills": fills}
    all_btc = load_rows("BTCUSDT", 10**9)
    wall, cpu = run_bars(all_btc, repeats)
    print(f"exsim bar replay (1 position, stop + take-profit resting): {wall:12,.0f} bars/s wall, "
          f"{cpu:12,.0f} bars/CPU-s ({len(all_btc):,} BTCUSDT 1m bars)")
    out |= {"inprocess_bars_per_s": round(wall), "inprocess_bars_per_cpu_s": round(cpu)}
    out["inprocess_mix"] = ("per bar and account: flat -> MARKET entry + reduce-only STOP_MARKET "
                            "+ reduce-only LIMIT take-profit; in position -> LIMIT place+cancel, "
                            "MARKET exit after 3 bars; stops/take-profits fill on the intra-bar "
                            f"path; 3 symbols, {ACCOUNTS} accounts, {bars} real 1m klines each "
                            f"(boundary: {max(1, bars // 3)})")
    return out


# ------------------------------------------------------------------ round trip (server)
# Section owned by the exsim server: signed REST order latency through real ccxt.
def _percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    import math

    k = max(0, min(len(sorted_ms) - 1, math.ceil(q / 100 * len(sorted_ms)) - 1))
    return sorted_ms[k]


def _start_exsim_process() -> tuple["subprocess.Popen", str]:
    """exsim in its own process (no GIL shared with the client), paused, on a free port;
    returns the process and its base URL read from the "exsim listening" log line."""
    import subprocess
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "tradefleet.cli", "exsim", "--data", str(ROOT / "data" / "binance-um"),
         "--port", "0", "--paused", "--symbols", "BTCUSDT", "--log-level", "info"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "exsim listening":
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, rec["rest_base_url"].removesuffix("/fapi")
    proc.kill()
    raise RuntimeError("exsim did not start (no 'exsim listening' log line)")


async def _roundtrips(base_url: str, orders: int, warmup: int) -> tuple[list[float], list[float]]:
    import ccxt.async_support as ccxt
    import httpx

    from tradefleet.exsim.server import DEFAULT_API_KEY, DEFAULT_API_SECRET, ccxt_urls

    async with httpx.AsyncClient(base_url=base_url) as admin:
        (await admin.post("/admin/replay/step", json={"bars": 3})).raise_for_status()
    ex = ccxt.binanceusdm({"apiKey": DEFAULT_API_KEY, "secret": DEFAULT_API_SECRET,
                           "urls": ccxt_urls(base_url), "options": {"fetchCurrencies": False},
                           "enableRateLimit": False})
    try:
        await ex.load_markets()
        bid = float((await ex.fetch_order_book("BTC/USDT:USDT", 5))["bids"][0][0])
        price = round(bid * 0.99, 1)  # post-only, rests below the market
        place, cancel = [], []
        for i in range(warmup + orders):
            t0 = time.perf_counter()
            order = await ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.002, price,
                                          {"postOnly": True})
            t1 = time.perf_counter()
            await ex.cancel_order(order["id"], "BTC/USDT:USDT")
            t2 = time.perf_counter()
            if i >= warmup:
                place.append((t1 - t0) * 1000)
                cancel.append((t2 - t1) * 1000)
        return place, cancel
    finally:
        await ex.close()


def bench_roundtrip(orders: int = 500, warmup: int = 50) -> dict:
    """Signed order round trip through ccxt over loopback (ms): ``orders`` LIMIT GTX
    (post-only) BUY orders resting 1 % below the market, each placed then cancelled, by
    ``ccxt.async_support.binanceusdm`` (URLs overridden, client throttle off) against an
    exsim server in its own process. Reports p50/p99 of place and of cancel; target: place
    p50 ≤ 3 ms."""
    import asyncio

    proc, base_url = _start_exsim_process()
    try:
        place, cancel = asyncio.run(_roundtrips(base_url, orders, warmup))
    finally:
        proc.terminate()
        proc.wait(10)
    place.sort()
    cancel.sort()
    out = {
        "roundtrip_orders": orders,
        "roundtrip_place_p50_ms": round(_percentile(place, 50), 3),
        "roundtrip_place_p99_ms": round(_percentile(place, 99), 3),
        "roundtrip_cancel_p50_ms": round(_percentile(cancel, 50), 3),
        "roundtrip_cancel_p99_ms": round(_percentile(cancel, 99), 3),
        "roundtrip_target_p50_ms": 3.0,
        "roundtrip_client": "ccxt.async_support.binanceusdm, LIMIT GTX place + cancel, loopback, "
                            "server in a separate process",
    }
    out["roundtrip_meets_target"] = out["roundtrip_place_p50_ms"] <= 3.0
    print(f"exsim round trip (ccxt, loopback): place p50 {out['roundtrip_place_p50_ms']:.2f} ms, "
          f"p99 {out['roundtrip_place_p99_ms']:.2f} ms; cancel p50 "
          f"{out['roundtrip_cancel_p50_ms']:.2f} ms, p99 {out['roundtrip_cancel_p99_ms']:.2f} ms "
          f"({orders} orders)")
    return out


#: name -> section; each returns a flat dict merged into the results JSON.
SECTIONS: dict[str, Callable[..., dict]] = {"inprocess": bench_inprocess,
                                            "roundtrip": bench_roundtrip}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=3000, help="klines per symbol (in-process)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=sorted(SECTIONS), action="append",
                    help="run only these sections (repeatable)")
    args = ap.parse_args(argv)
    results: dict = {"python": sys.version.split()[0], "machine": platform.machine(),
                     "time_utc_ms": int(time.time() * 1000)}
    if RESULTS.exists():   # keep figures of sections not run this time
        results = json.loads(RESULTS.read_text()) | results
    for name in args.only or SECTIONS:
        section = SECTIONS[name]
        kwargs = {"bars": args.bars, "repeats": args.repeats} if name == "inprocess" else {}
        results.update(section(**kwargs))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return results


if __name__ == "__main__":
    try:
        main()
    except ExchangeError as err:   # a rejection here is a bench bug: say which
        raise SystemExit(f"unexpected exchange rejection: {err}") from err
