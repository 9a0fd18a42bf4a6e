"""exsim engine: wallet = deposits + Σ realized PnL − Σ commission + Σ funding, exactly.

A scripted session on real BTCUSDT klines is checked against a hand computation to the
1e-8 USDT; a seeded random session over real BTC/ETH/SOL klines and real funding checks
the invariant after every step.
"""

import csv
import functools
import gzip
import pathlib
import random
from decimal import Decimal as D

from tradefleet.exsim.engine import Engine, ExchangeError

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "binance-um"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


@functools.cache
def klines(symbol: str) -> list[list[str]]:
    with gzip.open(DATA / "klines" / f"{symbol}-1m-2025-05-05_2025-05-11.csv.gz", "rt") as f:
        return list(csv.reader(f))[1:]


@functools.cache
def funding(symbol: str) -> dict[int, str]:
    """Funding rate by funding hour (ms), from the real funding file."""
    with gzip.open(DATA / "funding" / f"{symbol}-funding-2025-03-06_2025-06-24.csv.gz", "rt") as f:
        return {int(r[0]) // 1000 * 1000: r[1] for r in list(csv.reader(f))[1:]}


def feed(e: Engine, symbol: str, i: int) -> None:
    r = klines(symbol)[i]
    e.on_bar(symbol, int(r[0]), r[1], r[2], r[3], r[4], int(r[6]))


def test_scripted_session_matches_the_hand_computation_to_the_cent():
    e = Engine()
    e.create_account("a", "10000")
    feed(e, "BTCUSDT", 0)                                              # last 94220.0
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.050")   # fee 4711.00 × 5bp = 2.3555
    tp = e.place_order("a", "BTCUSDT", "SELL", "LIMIT", quantity="0.020", price="94300.0",
                       time_in_force="GTC")
    feed(e, "BTCUSDT", 1)               # high 94334: maker fill, pnl +1.60, fee 1886 × 2bp = 0.3772
    assert tp.status_name == "FILLED"
    e.apply_funding("BTCUSDT", "0.0001", "94330.0", 1746403320000)    # −0.03×94330×0.0001 = −0.28299
    e.place_order("a", "BTCUSDT", "SELL", "MARKET", quantity="0.050")  # at 94334.0: close 0.030
    # (pnl (94334−94220)×0.03 = +3.42), open short 0.020; fee 4716.70 × 5bp = 2.35835
    stop = e.place_order("a", "BTCUSDT", "BUY", "STOP_MARKET", quantity="0.020",
                         stop_price="94340.0", reduce_only=True)
    feed(e, "BTCUSDT", 2)               # high 94348.1: pnl (94334−94340)×0.02 = −0.12, fee 0.9434
    assert stop.status_name == "FILLED" and e.position("a", "BTCUSDT").lots == 0

    trades = e.user_trades("a", "BTCUSDT")
    assert [t.realized_pnl for t in trades] == [0, D("1.6"), D("3.42"), D("-0.12")]
    assert [t.commission for t in trades] == [D("2.3555"), D("0.3772"), D("2.35835"), D("0.9434")]
    totals = e.totals("a")
    assert totals["realized_pnl"] == D("4.90")
    assert totals["commission"] == D("6.03445")
    assert totals["funding"] == D("-0.28299")
    # 10000 + 4.90 − 6.03445 − 0.28299
    assert e.wallet_balance("a") == D("9998.58256")
    assert e.balance("a")[0]["balance"] == "9998.58256000"


def all_trades(e: Engine, account_id: str, symbol: str) -> list:
    """Every fill, paging userTrades by trade id (1000 per page, as Binance)."""
    out, from_id = [], 0
    while True:
        page = e.user_trades(account_id, symbol, from_id=from_id, limit=1000)
        out += page
        if len(page) < 1000:
            return out
        from_id = page[-1].id + 1


def check_invariant(e: Engine, account_id: str) -> None:
    """Wallet from the fills and funding records themselves, not from running totals."""
    trades = [t for s in SYMBOLS for t in all_trades(e, account_id, s)]
    funding_paid = sum((i.income for i in e.income(account_id, income_type="FUNDING_FEE", limit=1000)),
                       D(0))
    expected = (D("50000") + sum((t.realized_pnl for t in trades), D(0))
                - sum((t.commission for t in trades), D(0)) + funding_paid)
    assert e.wallet_balance(account_id) == expected
    t = e.totals(account_id)
    assert t["wallet"] == t["transfer"] + t["realized_pnl"] - t["commission"] + t["funding"]
    assert t["funding"] == funding_paid
    reserved = sum((D(o.margin_units) / 10**8 for o in e.open_orders(account_id)), D(0))
    assert D(e.account(account_id)["totalOpenOrderInitialMargin"]) == reserved


def test_random_session_on_real_data_keeps_the_wallet_invariant_exact():
    rng = random.Random(20250505)
    e = Engine()
    accounts = ("one-way", "hedge")
    for a in accounts:
        e.create_account(a, "50000")
    e.change_position_mode("hedge", True)
    unit = {"BTCUSDT": 2, "ETHUSDT": 20, "SOLUSDT": 1}
    for step in range(1500):
        for sym in SYMBOLS:
            feed(e, sym, step)
            open_time = int(klines(sym)[step][0])
            if open_time in funding(sym):
                e.apply_funding(sym, funding(sym)[open_time], e.mark_price(sym), open_time)
        for _ in range(2):
            a = rng.choice(accounts)
            sym = rng.choice(SYMBOLS)
            spec = e.spec(sym)
            last = e.last_price(sym)
            qty = spec.step_size * rng.choice((1, 2, 5)) * unit[sym]
            side = rng.choice(("BUY", "SELL"))
            ps = rng.choice(("LONG", "SHORT")) if a == "hedge" else None
            offset = spec.tick_size * rng.randint(1, 300)
            below, above = last - offset, last + offset
            kind = rng.random()
            try:
                if kind < 0.35:
                    e.place_order(a, sym, side, "MARKET", quantity=qty, position_side=ps)
                elif kind < 0.6:
                    e.place_order(a, sym, side, "LIMIT", quantity=qty,
                                  price=below if side == "BUY" else above,
                                  time_in_force=rng.choice(("GTC", "GTX")), position_side=ps)
                elif kind < 0.8:
                    e.place_order(a, sym, side, "STOP_MARKET", quantity=qty,
                                  stop_price=above if side == "BUY" else below, position_side=ps,
                                  reduce_only=(a == "one-way" and rng.random() < 0.5))
                elif kind < 0.9:
                    e.place_order(a, sym, side, "TAKE_PROFIT_MARKET", quantity=qty,
                                  stop_price=below if side == "BUY" else above, position_side=ps)
                else:
                    opens = e.open_orders(a, sym)
                    if opens:
                        e.cancel_order(a, sym, order_id=rng.choice(opens).order_id)
            except ExchangeError as err:
                # Refusals that random orders legitimately meet; anything else is a bug.
                assert err.code in (-2019, -2022, -2021, -4164, -4045, -2025), err
        if step % 100 == 99:
            for a in accounts:
                check_invariant(e, a)
    for a in accounts:
        check_invariant(e, a)
        fills = sum(len(all_trades(e, a, s)) for s in SYMBOLS)
        assert fills > 100, fills                  # the session really traded
        assert e.totals(a)["funding"] != 0         # and paid/received real funding


def test_reset_restores_the_initial_deposit_and_forgets_everything_else():
    e = Engine()
    e.create_account("a", "10000")
    feed(e, "BTCUSDT", 0)
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010")
    e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="94000",
                  time_in_force="GTC")
    e.change_leverage("a", "BTCUSDT", 50)
    e.reset()
    assert e.wallet_balance("a") == D("10000")
    assert e.open_orders("a") == [] and e.user_trades("a", "BTCUSDT") == []
    assert [i.income_type for i in e.income("a")] == ["TRANSFER"]
    assert e.leverage("a", "BTCUSDT") == 20 and e.last_price("BTCUSDT") == 0
    feed(e, "BTCUSDT", 0)
    assert e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010").order_id == 1


def test_income_history_lists_each_fill_as_commission_and_realized_pnl():
    e = Engine()
    e.create_account("a", "10000")
    feed(e, "BTCUSDT", 0)
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010")
    feed(e, "BTCUSDT", 1)
    e.place_order("a", "BTCUSDT", "SELL", "MARKET", quantity="0.010")
    rows = [(i.income_type, i.income, i.trade_id) for i in e.income("a")]
    assert rows == [("TRANSFER", D("10000"), None),
                    ("COMMISSION", D("-0.4711"), 1),            # opening fill: no REALIZED_PNL
                    ("REALIZED_PNL", D("1.14"), 2),
                    ("COMMISSION", D("-0.4716700"), 2)]
    assert [i.tran_id for i in e.income("a")] == sorted(i.tran_id for i in e.income("a"))
