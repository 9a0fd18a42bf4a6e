"""Execution against a real exsim over HTTP through real ccxt (entries, stops, tiers,
trailing, exits, sync). Faults, idempotency and rehydration: test_execution_faults.py."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.workers._execution import (BTC, ETH, TICK, RecordingHooks, first_reach, open_orders,
                                      position_amt, started_executor, tick_level)
from tests.workers.conftest import csv_klines
from tradefleet.workers.execution import CLIENT_ID_PATTERN, EntryRequest, ExecutionInputError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def oracle(exsim):
    """An independent ccxt client on the same account: what the exchange really holds."""
    client = exsim.ccxt_client(enableRateLimit=False)
    await client.load_markets()
    yield client
    await client.close()


@pytest.fixture
async def bot(exsim):
    ex, _ = await started_executor(exsim, hooks=RecordingHooks())
    await exsim.step(3)  # three bars replayed: the last price is bar 2's close
    yield ex
    await ex.close()


def long_request(entry: D, *, qty="0.012", stop_pct="0.005", signal="BTCUSDT-1-enter_long",
                 symbol="BTCUSDT", **kw) -> EntryRequest:
    return EntryRequest(symbol=symbol, side="long", qty=D(qty),
                        stop_price=entry * (1 - D(stop_pct)), reference_price=entry,
                        signal_id=signal, **kw)


def last_close(symbol: str, bars: int) -> D:
    return D(csv_klines(symbol)[bars - 1]["close"])


async def test_entry_is_a_market_order_then_a_reduce_only_stop_with_rounded_qty_and_price(bot, oracle):
    entry = last_close("BTCUSDT", 3)
    stop_raw = D("93700.04321")  # between ticks: a long's stop rounds up, toward the position
    result = await bot.open_position(EntryRequest(
        symbol="BTCUSDT", side="long", qty=D("0.0129"), stop_price=stop_raw,
        reference_price=entry, signal_id="BTCUSDT-1-enter_long"))

    assert result.outcome == "opened", result.reason
    assert (result.entry.type, result.entry.status, result.entry.filled_qty) == \
        ("market", "filled", D("0.012"))  # 0.0129 rounded down to the 0.001 step
    assert result.entry.avg_price == entry
    assert await position_amt(oracle, BTC) == D("0.012")
    plain, [stop] = await open_orders(oracle, BTC)
    assert plain == []
    assert (stop["orderType"], stop["side"], stop["reduceOnly"], D(stop["quantity"])) == \
        ("STOP_MARKET", "SELL", True, D("0.012"))
    assert D(stop["triggerPrice"]) == D("93700.1")
    assert stop["workingType"] == "CONTRACT_PRICE"
    assert stop["clientAlgoId"] == result.stop.client_order_id
    assert result.position.stop_price == D("93700.1") and result.position.protected


async def test_client_order_ids_are_deterministic_per_signal_and_leg(bot):
    entry = last_close("BTCUSDT", 3)
    result = await bot.open_position(long_request(entry, signal="BTCUSDT-42-enter_long"))
    ids = bot.ids
    assert result.entry.client_order_id == ids.for_signal("BTCUSDT", "BTCUSDT-42-enter_long", "entry")
    assert result.stop.client_order_id == ids.for_signal("BTCUSDT", "BTCUSDT-42-enter_long", "stop")
    assert all(CLIENT_ID_PATTERN.match(o.client_order_id) for o in result.orders)


async def test_entry_fill_is_reported_once_with_fee_and_leg(bot, exsim):
    entry = last_close("BTCUSDT", 3)
    result = await bot.open_position(long_request(entry))
    [fill] = result.fills
    assert (fill.leg, fill.purpose, fill.side, fill.qty, fill.price) == \
        ("entry", "entry", "buy", D("0.012"), entry)
    assert fill.fee == entry * D("0.012") * D("0.0005")  # exsim taker 5 bps
    assert result.entry.fee == fill.fee
    assert (await bot.sync("BTCUSDT")).fills == ()  # not reported a second time


async def test_stop_trigger_is_reported_by_sync_and_the_account_is_flat(bot, exsim, oracle):
    rows = csv_klines("BTCUSDT")
    entry = last_close("BTCUSDT", 3)
    result = await bot.open_position(long_request(entry, stop_pct="0.003"))
    stop = result.stop.stop_price
    hit = first_reach(rows, 3, stop, below=True)
    await exsim.step(hit - 3)  # every bar before the one that reaches the stop
    quiet = await bot.sync("BTCUSDT")
    assert (quiet.cause, quiet.closed, quiet.fills) == ("none", False, ())

    await exsim.step(1)
    synced = await bot.sync("BTCUSDT")

    assert (synced.closed, synced.cause, synced.position.side) == (True, "stop_filled", "flat")
    [fill] = synced.fills
    assert (fill.leg, fill.side, fill.qty) == ("stop", "sell", D("0.012"))
    assert fill.realized_pnl < 0 and synced.realized_pnl == fill.realized_pnl
    [stop_order] = [o for o in synced.orders if o.leg == "stop"]
    assert stop_order.status == "filled"
    assert await position_amt(oracle, BTC) == 0
    assert await open_orders(oracle, BTC) == ([], [])


def tier_setup(rows, start: int, entry: D) -> tuple[D, int]:
    """A stop distance (fraction of entry) for which the 1R tier is reached on a bar that
    reaches neither the stop nor 2R, before either of them."""
    for step in range(10, 80):
        pct = D(step) / D(10_000)
        stop = tick_level(entry, pct, True, TICK["BTCUSDT"])
        risk = entry - stop
        tp1, tp2 = entry + risk, entry + 2 * risk
        i_tp1 = first_reach(rows, start, tp1, below=False)
        try:
            i_stop = first_reach(rows, start, stop, below=True)
        except AssertionError:
            i_stop = len(rows)
        i_tp2 = first_reach(rows, start, tp2, below=False)
        if i_tp1 < i_stop and i_tp1 < i_tp2 and D(rows[i_tp1]["open"]) < tp1:
            return pct, i_tp1
    raise AssertionError("no suitable tier distance in the data")


async def test_take_profit_tier_fills_and_the_stop_is_resized_to_the_remainder(exsim, oracle):
    ex, _ = await started_executor(exsim, tpTiers=[{"r": 1, "fraction": 0.5},
                                                   {"r": 2, "fraction": 0.5}])
    try:
        await exsim.step(3)
        rows = csv_klines("BTCUSDT")
        entry = last_close("BTCUSDT", 3)
        pct, hit = tier_setup(rows, 3, entry)
        result = await ex.open_position(long_request(entry, qty="0.021", stop_pct=str(pct)))
        assert result.outcome == "opened", result.reason
        tp1, tp2 = result.take_profits
        assert (tp1.qty, tp2.qty) == (D("0.010"), D("0.011"))  # last tier takes the remainder
        risk = entry - result.stop.stop_price
        assert tp1.stop_price == entry + risk and tp2.stop_price == entry + 2 * risk

        await exsim.step(hit - 3 + 1)
        synced = await ex.sync("BTCUSDT")

        assert synced.cause == "take_profit_filled" and not synced.closed
        assert synced.position.qty == D("0.011")
        assert synced.position.stop_qty == D("0.011")
        assert synced.position.stop_price == result.stop.stop_price
        [fill] = synced.fills
        assert (fill.leg, fill.qty, fill.price) == ("tp1", D("0.010"), tp1.stop_price)
        assert await position_amt(oracle, BTC) == D("0.011")
        _, algo = await open_orders(oracle, BTC)
        stops = [o for o in algo if o["orderType"] == "STOP_MARKET"]
        assert [D(o["quantity"]) for o in stops] == [D("0.011")]  # the old stop is cancelled
        assert [o["clientAlgoId"] for o in algo if o["orderType"] == "TAKE_PROFIT_MARKET"] == \
            [tp2.client_order_id]
    finally:
        await ex.close()


async def test_trailing_tightens_the_stop_by_placing_the_new_one_then_cancelling(bot, oracle):
    entry = last_close("BTCUSDT", 3)
    result = await bot.open_position(long_request(entry, stop_pct="0.01"))
    old = result.stop

    moved = await bot.move_stop("BTCUSDT", old.stop_price + D("150.05"))

    assert moved.outcome == "moved", moved.reason
    assert moved.new_stop == old.stop_price + D("150.1")  # rounded up for a long
    assert moved.placed.leg == "trail-2" and moved.placed.purpose == "trail"
    assert moved.canceled.exchange_order_id == old.exchange_order_id
    assert moved.canceled.status == "canceled"
    _, [stop] = await open_orders(oracle, BTC)
    assert D(stop["triggerPrice"]) == moved.new_stop and D(stop["quantity"]) == D("0.012")


async def test_a_looser_stop_is_refused_and_changes_nothing_on_the_exchange(bot, oracle):
    entry = last_close("BTCUSDT", 3)
    result = await bot.open_position(long_request(entry, stop_pct="0.01"))
    _, before = await open_orders(oracle, BTC)

    looser = await bot.move_stop("BTCUSDT", result.stop.stop_price - 100)

    assert looser.outcome == "refused" and "loosen" in looser.reason
    assert looser.orders == ()
    assert (await open_orders(oracle, BTC))[1] == before
    assert bot.position("BTCUSDT").stop_price == result.stop.stop_price


async def test_short_stop_trails_downwards_only(bot, oracle):
    entry = last_close("ETHUSDT", 3)
    result = await bot.open_position(EntryRequest(
        symbol="ETHUSDT", side="short", qty=D("0.5"), stop_price=entry * D("1.01"),
        reference_price=entry, signal_id="ETHUSDT-1-enter_short"))
    assert result.outcome == "opened", result.reason
    up = await bot.move_stop("ETHUSDT", result.stop.stop_price + 1)
    down = await bot.move_stop("ETHUSDT", result.stop.stop_price - D("5.005"))
    assert (up.outcome, down.outcome) == ("refused", "moved")
    assert down.new_stop == result.stop.stop_price - D("5.01")  # a short's stop rounds down
    _, [stop] = await open_orders(oracle, ETH)
    assert (stop["side"], D(stop["triggerPrice"])) == ("BUY", down.new_stop)


async def test_a_stop_that_would_trigger_immediately_closes_the_position(exsim, oracle):
    ex, _ = await started_executor(exsim, slippageCapBps=1000)
    try:
        await exsim.step(3)
        last = last_close("BTCUSDT", 3)
        # The signal saw a higher price: its stop is above where the entry actually fills.
        result = await ex.open_position(EntryRequest(
            symbol="BTCUSDT", side="long", qty=D("0.012"), stop_price=last * D("1.005"),
            reference_price=last * D("1.01"), signal_id="BTCUSDT-9-enter_long"))

        assert result.outcome == "stop_failed_closed"
        assert (result.stop.status, result.stop.reject_code) == ("rejected", -2021)
        assert "immediately trigger" in result.stop.reject_message
        assert (result.close.leg, result.close.status, result.close.reduce_only) == \
            ("stopfail", "filled", True)
        assert result.position.is_flat
        assert await position_amt(oracle, BTC) == 0
        assert await open_orders(oracle, BTC) == ([], [])
    finally:
        await ex.close()


async def test_fill_beyond_the_slippage_cap_is_rolled_back_at_market(bot, oracle):
    last = last_close("BTCUSDT", 3)
    # The reference is 1 % below where the market fills: 100 bps against a 50 bps cap.
    reference = last * D("0.99")
    result = await bot.open_position(EntryRequest(
        symbol="BTCUSDT", side="long", qty=D("0.012"), stop_price=reference * D("0.99"),
        reference_price=reference, signal_id="BTCUSDT-7-enter_long"))

    assert result.outcome == "rolled_back"
    assert result.slippage_bps > 50 and "exceeds the cap of 50" in result.reason
    assert (result.close.leg, result.close.status, result.close.side) == ("rollback", "filled", "sell")
    assert result.stop is None
    assert [f.leg for f in result.fills] == ["entry", "rollback"]
    assert await position_amt(oracle, BTC) == 0
    assert await open_orders(oracle, BTC) == ([], [])


async def test_refused_entry_returns_the_exchange_code_and_message_and_changes_nothing(exsim, oracle):
    hooks = RecordingHooks()
    ex, _ = await started_executor(exsim, hooks=hooks)
    try:
        await exsim.step(3)
        entry = last_close("BTCUSDT", 3)
        # 10 BTC at leverage 5 needs ~190k USDT of margin; the account has 10k.
        result = await ex.open_position(long_request(entry, qty="10"))

        assert result.outcome == "rejected"
        assert (result.entry.status, result.entry.reject_code) == ("rejected", -2019)
        assert "insufficient" in result.entry.reject_message.lower()
        assert result.entry.attempts == 1  # a refusal is final: never retried
        assert hooks.rejects == [("BTCUSDT", "entry", -2019, result.entry.reject_message)]
        assert result.position.is_flat and ex.position("BTCUSDT").is_flat
        assert await position_amt(oracle, BTC) == 0
        assert await open_orders(oracle, BTC) == ([], [])
    finally:
        await ex.close()


async def test_exchange_side_order_rejection_is_reported_with_code_2010(bot, exsim, oracle):
    await exsim.fault(order_reject_rate=1.0)
    result = await bot.open_position(long_request(last_close("BTCUSDT", 3)))
    assert result.outcome == "rejected"
    assert (result.entry.reject_code, result.entry.reject_message) == (-2010, "NEW_ORDER_REJECTED")
    assert await position_amt(oracle, BTC) == 0


async def test_bad_entry_input_names_the_field_and_sends_nothing(bot, oracle):
    entry = last_close("BTCUSDT", 3)
    with pytest.raises(ExecutionInputError, match="request.stop_price .* must be below"):
        await bot.open_position(EntryRequest(symbol="BTCUSDT", side="long", qty=D("0.01"),
                                             stop_price=entry + 10, reference_price=entry,
                                             signal_id="s"))
    with pytest.raises(ExecutionInputError, match="request.symbol 'DOGEUSDT'"):
        await bot.open_position(long_request(entry, symbol="DOGEUSDT"))
    with pytest.raises(ExecutionInputError, match="request.qty"):
        await bot.open_position(long_request(entry, qty="0"))
    assert await oracle.fetch_my_trades(BTC) == []
    assert bot.position("BTCUSDT").is_flat


async def test_quantity_below_the_minimum_is_refused_without_an_order(bot, oracle):
    result = await bot.open_position(long_request(last_close("BTCUSDT", 3), qty="0.0009"))
    assert result.outcome == "refused" and "below the minimum 0.001" in result.reason
    assert result.entry is None
    assert await oracle.fetch_my_trades(BTC) == []


async def test_a_second_entry_on_an_open_position_is_refused(bot, oracle):
    entry = last_close("BTCUSDT", 3)
    await bot.open_position(long_request(entry))
    again = await bot.open_position(long_request(entry, signal="BTCUSDT-2-enter_long"))
    assert again.outcome == "refused" and "already has a long position" in again.reason
    assert await position_amt(oracle, BTC) == D("0.012")


async def test_close_position_closes_at_market_and_cancels_the_bots_orders(bot, oracle):
    entry = last_close("BTCUSDT", 3)
    await bot.open_position(long_request(entry))
    foreign = await oracle.create_order(BTC, "limit", "buy", 0.002, 90_000)

    closed = await bot.close_position("BTCUSDT", signal_id="BTCUSDT-5-exit")

    assert closed.outcome == "closed"
    assert (closed.close.leg, closed.close.reduce_only, closed.close.status) == ("exit", True, "filled")
    assert closed.close.client_order_id == bot.ids.for_signal("BTCUSDT", "BTCUSDT-5-exit", "exit")
    assert [o.leg for o in closed.canceled] == ["stop"]
    assert closed.close.realized_pnl == sum(f.realized_pnl for f in closed.fills if f.leg == "exit")
    assert await position_amt(oracle, BTC) == 0
    plain, algo = await open_orders(oracle, BTC)
    assert [o["orderId"] for o in plain] == [int(foreign["id"])] and algo == []  # others' stay


async def test_close_when_already_flat_sends_no_order(bot):
    result = await bot.close_position("BTCUSDT")
    assert (result.outcome, result.close) == ("flat", None)


async def test_drain_leaves_every_symbol_flat_with_no_open_orders(exsim, oracle):
    ex, _ = await started_executor(exsim, tpTiers=[{"r": 2, "fraction": 0.5}])
    try:
        await exsim.step(3)
        await ex.open_position(long_request(last_close("BTCUSDT", 3)))
        eth = last_close("ETHUSDT", 3)
        await ex.open_position(EntryRequest(symbol="ETHUSDT", side="short", qty=D("0.5"),
                                            stop_price=eth * D("1.01"), reference_price=eth,
                                            signal_id="ETHUSDT-1-enter_short"))
        await oracle.create_order(ETH, "limit", "buy", 0.1, 1_500)

        drained = await ex.drain()

        assert drained.flat and drained.remaining == ()
        assert {c.symbol: c.outcome for c in drained.closes} == {"BTCUSDT": "closed",
                                                                 "ETHUSDT": "closed"}
        assert all(p.is_flat for p in drained.positions)
        for market in (BTC, ETH):
            assert await position_amt(oracle, market) == 0
            assert await open_orders(oracle, market) == ([], [])
    finally:
        await ex.close()


async def test_order_latency_is_reported_for_every_acknowledged_order(exsim):
    hooks = RecordingHooks()
    ex, _ = await started_executor(exsim, hooks=hooks)
    try:
        await exsim.step(3)
        await ex.open_position(long_request(last_close("BTCUSDT", 3)))
        assert [(s, p) for s, p, _ in hooks.latencies] == [("BTCUSDT", "entry"), ("BTCUSDT", "stop")]
        assert all(ms > 0 for _, _, ms in hooks.latencies)
    finally:
        await ex.close()


def stop_touch_and_recover(rows, start: int, entry: D) -> tuple[D, int]:
    """A long stop distance whose first touching bar closes at least 3 ticks above it."""
    for step in range(5, 80):
        pct = D(step) / D(10_000)
        stop = entry * (1 - pct)
        i = first_reach(rows, start, stop, below=True)
        if D(rows[i]["open"]) > stop and D(rows[i]["close"]) > stop + 3 * TICK["BTCUSDT"]:
            return pct, i
    raise AssertionError("no stop that is touched and recovered in the data")


async def test_trailing_a_stop_that_already_triggered_reports_stopped_out_and_sync_cleans_up(
        bot, exsim, oracle):
    rows = csv_klines("BTCUSDT")
    entry = last_close("BTCUSDT", 3)
    pct, hit = stop_touch_and_recover(rows, 3, entry)
    opened = await bot.open_position(long_request(entry, stop_pct=str(pct)))
    await exsim.step(hit - 3 + 1)  # the stop fills; the bar closes back above it

    moved = await bot.move_stop("BTCUSDT", opened.stop.stop_price + TICK["BTCUSDT"])

    assert moved.outcome == "stopped_out", moved.reason
    assert moved.canceled.status == "filled" and moved.placed.status == "new"
    synced = await bot.sync("BTCUSDT")
    assert (synced.closed, synced.cause) == (True, "stop_filled")
    assert [f.leg for f in synced.fills] == ["stop"]
    assert await open_orders(oracle, BTC) == ([], [])  # the new stop was cancelled too
    assert await position_amt(oracle, BTC) == 0


async def test_hedge_mode_sends_position_side_instead_of_reduce_only(exsim, oracle):
    ex, setup = await started_executor(exsim, positionMode="hedge")
    try:
        assert ex.account.hedged and (await oracle.fetch_position_mode())["hedged"]
        await exsim.step(3)
        opened = await ex.open_position(long_request(last_close("BTCUSDT", 3)))
        assert opened.outcome == "opened", opened.reason
        _, [stop] = await open_orders(oracle, BTC)
        assert (stop["positionSide"], stop["side"], stop["reduceOnly"]) == ("LONG", "SELL", False)
        closed = await ex.close_position("BTCUSDT")
        assert closed.outcome == "closed"
        assert await position_amt(oracle, BTC) == 0
        assert await open_orders(oracle, BTC) == ([], [])
    finally:
        await ex.close()


async def test_sync_on_a_quiet_flat_symbol_changes_nothing(bot, exsim):
    await exsim.step(2)
    synced = await bot.sync("ETHUSDT")
    assert (synced.cause, synced.closed, synced.fills, synced.orders) == ("none", False, (), ())
    assert synced.position.is_flat


async def test_a_signal_that_was_already_executed_is_not_traded_again(bot, oracle):
    entry = last_close("BTCUSDT", 3)
    await bot.open_position(long_request(entry, signal="BTCUSDT-3-enter_long"))
    await bot.close_position("BTCUSDT")

    again = await bot.open_position(long_request(entry, signal="BTCUSDT-3-enter_long"))

    assert again.outcome == "refused" and "already executed" in again.reason
    assert again.entry.status == "filled" and again.entry.recovered
    assert [t["side"] for t in await oracle.fetch_my_trades(BTC)] == ["buy", "sell"]
    assert await position_amt(oracle, BTC) == 0
