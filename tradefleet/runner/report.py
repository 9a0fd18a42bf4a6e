"""The fleet report of a ``tradefleet run``: per bot and in total, reconciled.

Sources, each checked against the other:

* the database the recorder wrote (fills, bars, risk decisions, orders): what the fleet
  *said* happened;
* exsim's accounts read back through ccxt (income history: realized PnL, commission,
  funding; wallet balance, unrealized PnL): what the *exchange* booked.

A bot reconciles when, to the cent, the database's realized PnL and fees equal exsim's
income of those types, and exsim's wallet equals initial + realized − fees + funding.

Equity curves are rebuilt per minute from the recorded fills and bar closes (plus exsim's
funding payments at their times): equity(t) = initial + realized(t) − fees(t) +
funding(t) + Σ position × (close(t) − entry price). Round-trip trades (flat → flat, a
reversal splits one) give the win rate; ratios come from :mod:`tradefleet.report.stats`.
"""

from __future__ import annotations

import bisect
import json
import pathlib
from collections import defaultdict
from decimal import Decimal

import pandas as pd
import psycopg

from tradefleet.report.html import plot_equity_and_drawdown, render_page, table
from tradefleet.report.stats import TradeRecord, equity_stats, trade_stats

CENT = Decimal("0.01")
ZERO = Decimal(0)


def _d(x) -> Decimal:
    return Decimal(str(x)) if x is not None else ZERO


async def _exsim_account(exsim_url: str, api_key: str, api_secret: str) -> dict:
    """Income history and account totals of one exsim account, through real ccxt."""
    import ccxt.async_support as ccxt

    from tradefleet.workers.execution.client import exsim_urls

    ex = ccxt.binanceusdm({"apiKey": api_key, "secret": api_secret, "enableRateLimit": False,
                           "options": {"fetchCurrencies": False}, "urls": exsim_urls(exsim_url)})
    try:
        incomes, start = [], 0
        while True:
            page = await ex.fapiPrivateGetIncome({"startTime": start, "limit": 1000})
            incomes += page
            if len(page) < 1000:
                break
            start = int(page[-1]["time"]) + 1
        account = await ex.fapiPrivateV2GetAccount()
    finally:
        await ex.close()
    seen, unique = set(), []
    for row in incomes:  # pages overlap at equal times: keep each tranId once
        if row["tranId"] not in seen:
            seen.add(row["tranId"])
            unique.append(row)
    return {"income": unique, "account": account}


async def _db_rows(database_url: str, namespace: str, name: str, symbols: list[str]) -> dict:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        fills = await (await conn.execute(
            "SELECT symbol, trade_id, side, price, qty, fee, fee_asset, realized_pnl, time_ms "
            "FROM fills WHERE namespace = %s AND bot = %s ORDER BY time_ms, trade_id",
            (namespace, name))).fetchall()
        bars = await (await conn.execute(
            "SELECT symbol, open_time_ms + 60000, close FROM bars "
            "WHERE venue = 'exsim' AND interval = '1m' AND symbol = ANY(%s) "
            "ORDER BY open_time_ms", (symbols,))).fetchall()
        decisions = await (await conn.execute(
            "SELECT outcome, count(*) FROM risk_events WHERE type = 'decision' AND bot = %s "
            "GROUP BY outcome", (f"{namespace}/{name}",))).fetchall()
        orders = await (await conn.execute(
            "SELECT count(DISTINCT client_order_id), "
            "count(DISTINCT client_order_id) FILTER (WHERE reject_code IS NOT NULL) "
            "FROM orders WHERE namespace = %s AND bot = %s", (namespace, name))).fetchone()
        signals = await (await conn.execute(
            "SELECT count(*) FROM signals WHERE namespace = %s AND bot = %s",
            (namespace, name))).fetchone()
    return {"fills": fills, "bars": bars, "decisions": dict(decisions),
            "orders": orders[0], "rejects": orders[1], "signals": signals[0]}


def _round_trips(bot: str, fills: list, funding: list[tuple[int, str, Decimal]]) -> list[TradeRecord]:
    """Flat-to-flat trips per symbol; a fill that reverses closes one trip and opens one."""
    trips: list[TradeRecord] = []
    state: dict[str, dict] = {}
    for symbol, _tid, side, price, qty, fee, _asset, realized, t in fills:
        price, qty, fee, realized = _d(price), _d(qty), _d(fee), _d(realized)
        signed = qty if side == "buy" else -qty
        st = state.get(symbol)
        if st is None or st["pos"] == 0:
            state[symbol] = {"pos": signed, "entry_t": t, "entry_px": price, "qty": qty,
                             "side": "long" if signed > 0 else "short", "gross": ZERO,
                             "fees": fee}
            continue
        closing = min(qty, abs(st["pos"])) if (st["pos"] > 0) != (signed > 0) else ZERO
        share = closing / qty if qty else ZERO
        st["gross"] += realized
        st["fees"] += fee * (share if closing else 1)
        st["pos"] += signed
        if closing == 0:
            st["qty"] += qty
            continue
        if st["pos"] == 0 or (st["pos"] > 0) != (st["side"] == "long"):
            fund = sum((amt for ft, sym, amt in funding
                        if sym == symbol and st["entry_t"] <= ft <= t), ZERO)
            trips.append(TradeRecord(bot, symbol, st["side"], st["entry_t"], t, st["qty"],
                                     st["entry_px"], price, st["gross"], st["fees"], fund))
            rest = st["pos"]
            state[symbol] = {"pos": rest, "entry_t": t, "entry_px": price, "qty": abs(rest),
                             "side": "long" if rest > 0 else "short", "gross": ZERO,
                             "fees": fee * (1 - share)} if rest != 0 else {"pos": ZERO}
    return trips


def _equity_curve(initial: Decimal, fills: list, bars: list,
                  funding: list[tuple[int, str, Decimal]]) -> pd.Series:
    """Equity (USDT, float) at every bar close of the bot's symbols."""
    events = sorted([(int(f[8]), 0, f) for f in fills] + [(t, 1, (s, a)) for t, s, a in funding],
                    key=lambda e: (e[0], e[1]))
    times = [e[0] for e in events]
    pos: dict[str, Decimal] = defaultdict(lambda: ZERO)
    entry: dict[str, Decimal] = defaultdict(lambda: ZERO)
    last_close: dict[str, Decimal] = {}
    cash = initial
    i = 0
    points: dict[int, float] = {}
    for symbol, close_ms, close in bars:
        close_ms = int(close_ms)
        j = bisect.bisect_right(times, close_ms)
        for _t, kind, e in events[i:j]:
            if kind == 1:
                cash += e[1]
                continue
            sym, _tid, side, price, qty, fee, _asset, realized, _ = e
            price, qty = _d(price), _d(qty)
            signed = qty if side == "buy" else -qty
            cash += _d(realized) - _d(fee)
            p = pos[sym]
            if p == 0 or (p > 0) == (signed > 0):  # open or add: weighted average entry
                entry[sym] = (entry[sym] * abs(p) + price * qty) / (abs(p) + qty)
            elif abs(signed) > abs(p):  # reversal: the rest opens at the fill price
                entry[sym] = price
            pos[sym] = p + signed
            if pos[sym] == 0:
                entry[sym] = ZERO
        i = j
        last_close[symbol] = _d(close)
        unreal = sum((pos[s] * (last_close.get(s, entry[s]) - entry[s]) for s in pos), ZERO)
        points[close_ms] = float(cash + unreal)
    series = pd.Series(points, dtype=float)
    series.index = pd.to_datetime(series.index, unit="ms", utc=True)
    return series.sort_index()


def _money(x: Decimal) -> str:
    """USDT with 8 decimals as Binance prints it ("0.00000000", never "0E-8")."""
    return f"{x:.8f}"


async def bot_report(fleet, rt, initial: Decimal) -> tuple[dict, pd.Series]:
    """One bot's figures, reconciliation and equity curve."""
    ns, name = rt.bot.metadata.namespace, rt.bot.metadata.name
    db = await _db_rows(fleet.database_url, ns, name, rt.bot.spec.symbols)
    ex = await _exsim_account(fleet.exsim_url, rt.api_key, rt.api_secret)
    by_type: dict[str, Decimal] = defaultdict(lambda: ZERO)
    funding: list[tuple[int, str, Decimal]] = []
    for row in ex["income"]:
        by_type[row["incomeType"]] += _d(row["income"])
        if row["incomeType"] == "FUNDING_FEE":
            funding.append((int(row["time"]), row["symbol"], _d(row["income"])))
    fills = db["fills"]
    db_realized = sum((_d(f[7]) for f in fills), ZERO)
    db_fees = sum((_d(f[5]) for f in fills if f[6] == "USDT"), ZERO)
    ex_realized, ex_fees = by_type["REALIZED_PNL"], -by_type["COMMISSION"]
    ex_funding = by_type["FUNDING_FEE"]
    wallet = _d(ex["account"]["totalWalletBalance"])
    unrealized = _d(ex["account"]["totalUnrealizedProfit"])
    identity = wallet - (initial + ex_realized - ex_fees + ex_funding)
    diffs = {"realized_pnl_usdt": _money(db_realized - ex_realized),
             "fees_usdt": _money(db_fees - ex_fees),
             "wallet_identity_usdt": _money(identity)}
    reconciled = all(abs(Decimal(v)) < CENT for v in diffs.values())

    trips = _round_trips(rt.key, fills, funding)
    curve = _equity_curve(initial, fills, db["bars"], funding)
    stats = equity_stats(curve) if len(curve) else {}
    ts = trade_stats(trips)
    report = {
        "bot": rt.key, "strategy": rt.bot.spec.strategy.name, "symbols": rt.bot.spec.symbols,
        "signals": db["signals"], "orders": db["orders"], "order_rejects": db["rejects"],
        "fills": len(fills), "trades": ts["trades"], "wins": ts["wins"], "losses": ts["losses"],
        "win_rate": ts["win_rate"], "profit_factor": ts["profit_factor"],
        "expectancy_usdt": ts["expectancy_usdt"],
        "realized_pnl_usdt": _money(ex_realized), "unrealized_pnl_usdt": _money(unrealized),
        "fees_usdt": _money(ex_fees), "funding_usdt": _money(ex_funding),
        "net_pnl_usdt": _money(ex_realized - ex_fees + ex_funding + unrealized),
        "initial_equity_usdt": _money(initial), "wallet_balance_usdt": _money(wallet),
        "final_equity_usdt": _money(wallet + unrealized),
        "max_drawdown": stats.get("max_drawdown"), "sharpe": stats.get("sharpe"),
        "sortino": stats.get("sortino"), "total_return": stats.get("total_return"),
        "risk_decisions": {k: db["decisions"].get(k, 0) for k in ("allow", "soft_allow", "block")},
        "reconciliation": {"ok": reconciled, "differences": diffs,
                           "database": {"realized_pnl_usdt": _money(db_realized),
                                        "fees_usdt": _money(db_fees)},
                           "exsim": {"realized_pnl_usdt": _money(ex_realized),
                                     "fees_usdt": _money(ex_fees),
                                     "funding_usdt": _money(ex_funding),
                                     "wallet_balance_usdt": _money(wallet)}},
    }
    return report, curve


async def build_report(fleet, final_status: dict, started_ms: int) -> dict:
    """The whole report: per bot, fleet totals, the replay window and the equity curves."""
    initial = Decimal(fleet.options.initial_balance)
    bots, curves = [], {}
    for rt in fleet.bots:
        rep, curve = await bot_report(fleet, rt, initial)
        bots.append(rep)
        curves[rt.key] = curve
    total_curve = pd.concat(curves.values(), axis=1).ffill().bfill().sum(axis=1) \
        if curves else pd.Series(dtype=float)
    total = {k: _money(sum((Decimal(b[k]) for b in bots), ZERO)) for k in (
        "realized_pnl_usdt", "unrealized_pnl_usdt", "fees_usdt", "funding_usdt",
        "net_pnl_usdt", "final_equity_usdt")}
    wins, trades = sum(b["wins"] for b in bots), sum(b["trades"] for b in bots)
    total_stats = equity_stats(total_curve) if len(total_curve) else {}
    total.update({
        "trades": trades, "wins": wins, "win_rate": wins / trades if trades else None,
        "fills": sum(b["fills"] for b in bots), "orders": sum(b["orders"] for b in bots),
        "max_drawdown": total_stats.get("max_drawdown"), "sharpe": total_stats.get("sharpe"),
        "sortino": total_stats.get("sortino"),
        "risk_decisions": {k: sum(b["risk_decisions"][k] for b in bots)
                           for k in ("allow", "soft_allow", "block")},
        "reconciled": all(b["reconciliation"]["ok"] for b in bots),
    })
    return {
        "run_id": fleet.run_id, "out": str(fleet.out),
        "replay": {"from_ms": final_status.get("data_start"),
                   "to_ms": final_status.get("replay_clock"),
                   "bars_replayed": final_status.get("bars_replayed"),
                   "symbols": final_status.get("symbols")},
        "started_ms": started_ms, "bots": bots, "total": total,
        "_curves": {k: v for k, v in curves.items()} | {"fleet": total_curve},
    }


def write_report(out: pathlib.Path, report: dict) -> None:
    """Write report.json, equity.csv, equity.png and report.html; removes the curves from
    ``report``."""
    curves = report.pop("_curves", {})
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if curves:
        pd.DataFrame(curves).to_csv(out / "equity.csv", index_label="time")
    cols = ["bot", "strategy", "trades", "win_rate", "realized_pnl_usdt", "unrealized_pnl_usdt",
            "fees_usdt", "funding_usdt", "net_pnl_usdt", "max_drawdown", "sharpe", "sortino"]
    rows = report["bots"] + [{"bot": "total", **report["total"]}]
    risk = [{"bot": b["bot"], **b["risk_decisions"], "orders": b["orders"],
             "rejects": b["order_rejects"], "reconciled": b["reconciliation"]["ok"]}
            for b in report["bots"]]
    png = plot_equity_and_drawdown(curves) if curves else ""
    if png:
        import base64

        (out / "equity.png").write_bytes(base64.b64decode(png.split(",", 1)[1]))
    replay = report["replay"]
    page = render_page(
        f"tradefleet run {report['run_id']}",
        f"replay {pd.to_datetime(replay['from_ms'], unit='ms', utc=True)} → "
        f"{pd.to_datetime(replay['to_ms'], unit='ms', utc=True)}; Sharpe/Sortino on hourly "
        "returns; money in USDT",
        [("Bots", table(rows, cols)),
         ("Equity and drawdown", f"<img src='{png}' alt='equity and drawdown'>" if png else ""),
         ("Risk decisions and reconciliation",
          table(risk, ["bot", "allow", "soft_allow", "block", "orders", "rejects", "reconciled"]))])
    (out / "report.html").write_text(page)
