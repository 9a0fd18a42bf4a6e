"""exsim order throughput.

Section ``bench_inprocess`` (matching core, no server): replays real 1m klines of BTCUSDT,
ETHUSDT and SOLUSDT (``data/binance-um/klines``) through one :class:`Engine` with a realistic
order mix for several accounts on every bar:

* a MARKET entry, alternating long and short,
* a reduce-only STOP_MARKET protective stop 0.15 % away (many trigger on later bars' paths),
* a LIMIT order placed far from the market and cancelled (a "cancel + replace" leg),
* a reduce-only MARKET exit of whatever is still open, then the stop is cancelled if open,

and counts orders submitted per second of wall time, *including* the kline replay, fills,
trigger walking, position and fee accounting (no listener subscribed, as in the
backtester). It measures the integer fast path (``Engine.submit`` / ``cancel`` /
``on_bar_ticks``, what the backtester uses) and the Decimal/string boundary
(``place_order`` / ``cancel_order`` / ``on_bar``, what the HTTP server uses).

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


def _new_engine() -> Engine:
    e = Engine(config=EngineConfig())
    for a in range(ACCOUNTS):
        e.create_account(f"acct{a}", "1000000")
        for s in SYMBOLS:
            e.change_leverage(f"acct{a}", s, 20)
    return e


def run_fast(rows: dict[str, list[list[str]]]) -> tuple[int, int, float]:
    """Integer fast path. Returns (orders submitted, fills, seconds)."""
    e = _new_engine()
    syms = [(e.symbol_index(s), s, [(int(r[0]), *(e.price_to_ticks(s, v) for v in r[1:5]), int(r[6]))
                                    for r in rows[s]]) for s in SYMBOLS]
    accounts = [f"acct{a}" for a in range(ACCOUNTS)]
    n_bars = min(len(b) for _, _, b in syms)
    submit, cancel = e.submit, e.cancel
    orders = 0
    t0 = time.perf_counter()
    for i in range(n_bars):
        for sym, s, bars in syms:
            ot, o, h, lo, c, ct = bars[i]
            e.on_bar_ticks(sym, ot, o, h, lo, c, ct)
            lots = LOTS[s]
            off = c * 15 // 10000 or 1
            for k, acct in enumerate(accounts):
                side = en.BUY if (i + k) % 2 == 0 else en.SELL
                pos = e._accounts[acct].pos[sym][en.BOTH].lots
                if pos:
                    submit(acct, sym, -1 if pos > 0 else 1, en.MARKET, abs(pos), reduce_only=True)
                    orders += 1
                for x in list(e._accounts[acct].open_orders.values()):
                    if x.sym == sym:
                        cancel(acct, x.order_id)
                submit(acct, sym, side, en.MARKET, lots)
                stop = c - side * off
                submit(acct, sym, -side, en.STOP_MARKET, lots, stop_ticks=stop, reduce_only=True)
                far = c - side * 40 * off
                lim = submit(acct, sym, side, en.LIMIT, lots, price_ticks=far, tif=en.GTC)
                cancel(acct, lim.order_id)
                orders += 3
    dt = time.perf_counter() - t0
    fills = sum(len(e._accounts[a].fills) for a in accounts)
    return orders, fills, dt


def run_boundary(rows: dict[str, list[list[str]]]) -> tuple[int, int, float]:
    """Decimal/string boundary (what the HTTP server calls). Returns (orders, fills, seconds)."""
    e = _new_engine()
    accounts = [f"acct{a}" for a in range(ACCOUNTS)]
    n_bars = min(len(v) for v in rows.values())
    specs = {s: e.spec(s) for s in SYMBOLS}
    orders = 0
    t0 = time.perf_counter()
    for i in range(n_bars):
        for s in SYMBOLS:
            r = rows[s][i]
            e.on_bar(s, int(r[0]), r[1], r[2], r[3], r[4], int(r[6]))
            spec = specs[s]
            last = e.last_price(s)
            qty = str(spec.step_size * LOTS[s])
            off = max(1, int(last * 15 / 10000 / spec.tick_size)) * spec.tick_size
            for k, acct in enumerate(accounts):
                side = "BUY" if (i + k) % 2 == 0 else "SELL"
                other = "SELL" if side == "BUY" else "BUY"
                sign = 1 if side == "BUY" else -1
                amt = e.position(acct, s).position_amt
                if amt:
                    e.place_order(acct, s, "SELL" if amt > 0 else "BUY", "MARKET",
                                  quantity=str(abs(amt)), reduce_only="true")
                    orders += 1
                for x in e.open_orders(acct, s):
                    e.cancel_order(acct, s, order_id=x.order_id)
                e.place_order(acct, s, side, "MARKET", quantity=qty)
                e.place_order(acct, s, other, "STOP_MARKET", quantity=qty,
                              stop_price=str(last - sign * off), reduce_only="true")
                lim = e.place_order(acct, s, side, "LIMIT", quantity=qty,
                                    price=str(last - sign * 40 * off), time_in_force="GTC")
                e.cancel_order(acct, s, order_id=lim.order_id)
                orders += 3
    dt = time.perf_counter() - t0
    fills = sum(len(e.user_trades(a, s, limit=1000)) for a in accounts for s in SYMBOLS)
    return orders, fills, dt


def bench_inprocess(bars: int = 3000, repeats: int = 3) -> dict:
    """In-process matching throughput (orders/s), best of ``repeats``, fast path and boundary."""
    rows = {s: load_rows(s, bars) for s in SYMBOLS}
    best_fast = best_boundary = None
    for _ in range(repeats):
        orders, fills, dt = run_fast(rows)
        if best_fast is None or orders / dt > best_fast[0] / best_fast[2]:
            best_fast = (orders, fills, dt)
        orders, fills, dt = run_boundary({s: r[: max(1, bars // 3)] for s, r in rows.items()})
        if best_boundary is None or orders / dt > best_boundary[0] / best_boundary[2]:
            best_boundary = (orders, fills, dt)
    fast = best_fast[0] / best_fast[2]
    boundary = best_boundary[0] / best_boundary[2]
    print(f"exsim in-process, fast path : {fast:12,.0f} orders/s "
          f"({best_fast[0]:,} orders, {best_fast[1]:,} fills, {best_fast[2]:.3f} s)")
    print(f"exsim in-process, boundary  : {boundary:12,.0f} orders/s "
          f"({best_boundary[0]:,} orders, {best_boundary[1]:,} fills, {best_boundary[2]:.3f} s)")
    return {
        "inprocess_orders_per_s": round(fast),
        "inprocess_boundary_orders_per_s": round(boundary),
        "inprocess_mix": "per bar and account: MARKET entry, reduce-only STOP_MARKET, "
                         "LIMIT place+cancel, reduce-only MARKET exit; 3 symbols, "
                         f"{ACCOUNTS} accounts, real 1m klines",
        "inprocess_fills": best_fast[1],
        "inprocess_orders": best_fast[0],
    }


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
