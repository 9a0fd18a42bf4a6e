"""Trading through unmodified ccxt (binanceusdm, only URLs overridden) against exsim."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

import ccxt.async_support as ccxt
import pytest

from .conftest import BTC, ETH, INITIAL, csv_klines

pytestmark = pytest.mark.timeout(60)

TICK = Decimal("0.1")  # BTCUSDT tickSize


def first_reach(rows: list[dict], start: int, level: Decimal, below: bool) -> int:
    """Index of the first bar from ``start`` whose range reaches ``level``."""
    for i in range(start, len(rows)):
        if (Decimal(rows[i]["low"]) <= level) if below else (Decimal(rows[i]["high"]) >= level):
            return i
    raise AssertionError("level never reached in the data")


def level_without_gap(rows: list[dict], start: int, entry: Decimal, pct: str, below: bool) -> tuple[Decimal, int]:
    """A tick-aligned level ``pct`` away from ``entry`` first reached inside a bar (the bar
    opens on the near side, so a stop there fills at the level, not at a gap open)."""
    step = Decimal(pct)
    while True:
        raw = entry * (1 - step) if below else entry * (1 + step)
        level = raw.quantize(TICK, ROUND_DOWN if below else ROUND_UP)
        i = first_reach(rows, start, level, below)
        if (Decimal(rows[i]["open"]) > level) if below else (Decimal(rows[i]["open"]) < level):
            return level, i
        step += Decimal("0.0005")


async def test_balance_is_the_initial_deposit(exchange):
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] == float(INITIAL) and balance["USDT"]["free"] == float(INITIAL)


async def test_set_leverage_is_acknowledged_and_applies_to_the_position(exchange, admin):
    assert (await exchange.set_leverage(7, BTC))["leverage"] == 7
    admin.step(3)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    [position] = await exchange.fetch_positions([BTC], params={"useV2": True})
    assert position["leverage"] == 7


async def test_market_order_fills_at_once_at_the_last_close(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    order = await exchange.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert Decimal(str(order["average"])) == Decimal(rows[2]["close"])


async def test_reduce_only_stop_market_triggers_on_replayed_prices_and_flattens(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    entry = await exchange.create_order(BTC, "market", "buy", 0.01)
    stop_price, hit = level_without_gap(rows, 3, Decimal(str(entry["average"])), "0.002", below=True)
    stop = await exchange.create_order(BTC, "market", "sell", 0.01, None,
                                       {"stopLossPrice": float(stop_price), "reduceOnly": True})
    assert stop["status"] == "open" and stop["triggerPrice"] == float(stop_price)
    admin.step(hit - 3)  # every bar before the one that reaches the stop
    assert [o["id"] for o in await exchange.fetch_open_orders(BTC, params={"trigger": True})] == [stop["id"]]
    admin.step(1)
    assert await exchange.fetch_open_orders(BTC, params={"trigger": True}) == []
    assert await exchange.fetch_positions([BTC]) == []
    trades = await exchange.fetch_my_trades(BTC)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert Decimal(str(trades[-1]["price"])) == stop_price
    # Stamped on the intra-bar path of the bar that reached the stop.
    assert int(rows[hit]["open_time"]) <= trades[-1]["timestamp"] <= int(rows[hit]["close_time"])
    algo = await exchange.fetch_order(stop["id"], BTC, {"trigger": True})
    assert algo["status"] == "closed"
    assert algo["info"]["algoStatus"] == "FINISHED"


async def test_take_profit_market_closes_the_position_at_its_trigger(exchange, admin):
    rows = csv_klines("ETHUSDT")
    admin.step(3)
    entry = await exchange.create_order(ETH, "market", "buy", 0.1)
    tp_level = Decimal(str(entry["average"])) * Decimal("1.002")
    tp_price = tp_level.quantize(Decimal("0.01"), ROUND_UP)
    hit = first_reach(rows, 3, tp_price, below=False)
    assert Decimal(rows[hit]["open"]) < tp_price, "pick data where the TP is reached inside a bar"
    tp = await exchange.create_order(ETH, "market", "sell", 0.1, None,
                                     {"takeProfitPrice": float(tp_price), "reduceOnly": True})
    assert tp["type"] == "market" and tp["takeProfitPrice"] == float(tp_price)
    admin.step(hit - 3 + 1)
    assert await exchange.fetch_positions([ETH]) == []
    last = (await exchange.fetch_my_trades(ETH))[-1]
    assert (last["side"], Decimal(str(last["price"]))) == ("sell", tp_price)


async def test_post_only_limit_below_the_market_rests_as_maker(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    price = Decimal(rows[2]["close"]) - 50
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, float(price), {"postOnly": True})
    assert order["status"] == "open" and order["postOnly"] is True
    assert order["timeInForce"] == "PO"


async def test_post_only_limit_that_would_cross_is_rejected(exchange, admin):
    admin.step(3)
    with pytest.raises(ccxt.InvalidOrder, match="-5022"):
        await exchange.create_order(BTC, "limit", "buy", 0.01, 95_000, {"postOnly": True})
    assert await exchange.fetch_open_orders(BTC) == []


async def test_ioc_limit_fills_what_crosses_and_expires_the_rest(exchange, admin):
    admin.step(3)
    far = await exchange.create_order(BTC, "limit", "buy", 0.01, 90_000, {"timeInForce": "IOC"})
    assert far["status"] == "expired" and far["filled"] == 0
    near = await exchange.create_order(BTC, "limit", "buy", 0.01, 95_000, {"timeInForce": "IOC"})
    assert near["status"] == "closed" and near["filled"] == 0.01
    assert await exchange.fetch_open_orders(BTC) == []


async def test_fok_limit_that_cannot_fill_entirely_is_rejected_with_5021(exchange, admin):
    admin.step(3)
    with pytest.raises(ccxt.InvalidOrder, match="-5021"):
        await exchange.create_order(BTC, "limit", "buy", 0.01, 90_000, {"timeInForce": "FOK"})
    assert await exchange.fetch_open_orders(BTC) == []
    assert await exchange.fetch_my_trades(BTC) == []


async def test_fok_limit_that_can_fill_entirely_fills(exchange, admin):
    admin.step(3)
    filled = await exchange.create_order(BTC, "limit", "buy", 0.01, 95_000, {"timeInForce": "FOK"})
    assert filled["status"] == "closed" and filled["filled"] == 0.01


async def test_cancel_removes_a_resting_order(exchange, admin):
    admin.step(3)
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 90_000)
    canceled = await exchange.cancel_order(order["id"], BTC)
    assert canceled["status"] == "canceled"
    assert await exchange.fetch_open_orders(BTC) == []
    assert (await exchange.fetch_order(order["id"], BTC))["status"] == "canceled"


async def test_cancel_all_orders_cancels_plain_and_conditional_orders_separately(exchange, admin):
    admin.step(3)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    await exchange.create_order(BTC, "limit", "buy", 0.01, 90_000)
    await exchange.create_order(BTC, "market", "sell", 0.01, None, {"stopLossPrice": 90_000, "reduceOnly": True})
    await exchange.cancel_all_orders(BTC)
    assert await exchange.fetch_open_orders(BTC) == []
    assert len(await exchange.fetch_open_orders(BTC, params={"trigger": True})) == 1
    await exchange.cancel_all_orders(BTC, {"trigger": True})
    assert await exchange.fetch_open_orders(BTC, params={"trigger": True}) == []


async def test_open_orders_lists_resting_orders_with_their_fields(exchange, admin):
    admin.step(3)
    a = await exchange.create_order(BTC, "limit", "buy", 0.01, 90_000, {"clientOrderId": "mine-1"})
    b = await exchange.create_order(ETH, "limit", "sell", 0.5, 1_850)
    btc = await exchange.fetch_open_orders(BTC)
    assert [(o["id"], o["clientOrderId"], o["side"], o["price"], o["amount"]) for o in btc] == \
        [(a["id"], "mine-1", "buy", 90_000.0, 0.01)]
    assert [o["id"] for o in await exchange.fetch_open_orders(ETH)] == [b["id"]]


async def test_resting_limit_fills_when_the_replay_reaches_its_price(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    price, hit = level_without_gap(rows, 3, Decimal(rows[2]["close"]), "0.001", below=True)
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, float(price))
    admin.step(hit - 3 + 1)
    filled = await exchange.fetch_order(order["id"], BTC)
    assert filled["status"] == "closed" and Decimal(str(filled["average"])) == price
    [trade] = await exchange.fetch_my_trades(BTC)
    assert trade["takerOrMaker"] == "maker"


async def test_positions_report_side_size_entry_and_unrealized_pnl(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    await exchange.create_order(BTC, "market", "sell", 0.02)
    admin.step(2)
    [p] = await exchange.fetch_positions([BTC])
    entry, mark = Decimal(rows[2]["close"]), Decimal(rows[4]["close"])
    assert (p["side"], p["contracts"], p["entryPrice"]) == ("short", 0.02, float(entry))
    assert p["markPrice"] == float(mark)
    assert Decimal(str(p["unrealizedPnl"])) == (entry - mark) * Decimal("0.02")


async def test_my_trades_report_price_amount_fee_and_realized_pnl(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    admin.step(2)
    await exchange.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    buy, sell = await exchange.fetch_my_trades(BTC)
    p_in, p_out = Decimal(rows[2]["close"]), Decimal(rows[4]["close"])
    assert (buy["side"], Decimal(str(buy["price"])), buy["amount"]) == ("buy", p_in, 0.01)
    assert buy["takerOrMaker"] == "taker" and buy["fee"]["currency"] == "USDT"
    assert Decimal(buy["info"]["commission"]) == p_in * Decimal("0.01") * Decimal("0.0005")  # taker 5 bps
    assert Decimal(sell["info"]["realizedPnl"]) == (p_out - p_in) * Decimal("0.01")


async def test_close_position_stop_closes_whatever_is_open(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    await exchange.create_order(BTC, "market", "buy", 0.03)
    stop_price, hit = level_without_gap(rows, 3, Decimal(rows[2]["close"]), "0.002", below=True)
    await exchange.create_order(BTC, "market", "sell", None, None,
                                {"stopLossPrice": float(stop_price), "closePosition": True})
    admin.step(hit - 3 + 1)
    assert await exchange.fetch_positions([BTC]) == []


async def test_hedge_mode_keeps_long_and_short_apart(exchange, admin):
    await exchange.set_position_mode(True)
    assert (await exchange.fetch_position_mode())["hedged"] is True
    admin.step(3)
    await exchange.create_order(BTC, "market", "buy", 0.01, None, {"positionSide": "LONG"})
    await exchange.create_order(BTC, "market", "sell", 0.02, None, {"positionSide": "SHORT"})
    positions = await exchange.fetch_positions([BTC])
    assert sorted((p["side"], p["contracts"]) for p in positions) == [("long", 0.01), ("short", 0.02)]


async def test_two_api_keys_trade_separate_accounts(make_exchange, admin):
    from .conftest import OTHER_KEY, OTHER_SECRET
    one, two = make_exchange(), make_exchange(OTHER_KEY, OTHER_SECRET)
    await one.load_markets()
    await two.load_markets()
    admin.step(3)
    await one.create_order(BTC, "market", "buy", 0.01)
    assert len(await one.fetch_positions([BTC])) == 1
    assert await two.fetch_positions([BTC]) == []


async def test_leverage_and_margin_mode_are_read_back_from_symbol_config(exchange, admin):
    await exchange.set_leverage(12, ETH)
    await exchange.set_margin_mode("isolated", ETH)
    leverage = await exchange.fetch_leverage(ETH)
    assert (leverage["longLeverage"], leverage["marginMode"]) == (12, "isolated")
    assert (await exchange.fetch_margin_mode(BTC))["marginMode"] == "cross"


async def test_trading_fee_is_the_engine_maker_and_taker_rate(exchange):
    fee = await exchange.fetch_trading_fee(BTC)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)
