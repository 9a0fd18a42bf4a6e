"""Execution under faults and restarts, against a real exsim through real ccxt: lost
responses, 429 and 5xx never double a position; a restarted executor finds its position
and stop, and protects a position that has none."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal as D

import pytest

from tests.workers._execution import (BTC, RecordingHooks, open_orders, position_amt,
                                      started_executor)
from tests.workers.conftest import csv_klines
from tradefleet.workers.execution import EntryRequest

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def oracle(exsim):
    client = exsim.ccxt_client(enableRateLimit=False)
    await client.load_markets()
    yield client
    await client.close()


def entry_request(signal: str = "BTCUSDT-1-enter_long") -> EntryRequest:
    entry = D(csv_klines("BTCUSDT")[2]["close"])
    return EntryRequest(symbol="BTCUSDT", side="long", qty=D("0.012"),
                        stop_price=entry * D("0.99"), reference_price=entry, signal_id=signal)


def seed_for(pattern: str, rate: float = 0.5, misses_after: int = 12) -> int:
    """A fault RNG seed whose draws follow ``pattern`` (``h`` fires, ``m`` does not), then
    ``misses_after`` misses. Every /fapi request draws once."""
    for seed in range(100_000):
        rng = random.Random(seed)
        want = pattern + "m" * misses_after
        if all((rng.random() < rate) == (c == "h") for c in want):
            return seed
    raise AssertionError("no seed found")


class CreateRetryHooks(RecordingHooks):
    """Records, and sets ``create_retried`` when an order placement is about to be retried."""

    def __init__(self) -> None:
        super().__init__()
        self.create_retried = asyncio.Event()

    def request_retried(self, symbol, operation, attempt, delay_ms, error):
        super().request_retried(symbol, operation, attempt, delay_ms, error)
        if operation == "create_order":
            self.create_retried.set()


async def buys(oracle) -> list[dict]:
    return [t for t in await oracle.fetch_my_trades(BTC) if t["side"] == "buy"]


async def test_entry_whose_response_was_lost_is_found_by_client_id_not_resent(exsim, oracle):
    """exsim drops a request whose client hung up before it was read, so "executed, but
    the answer was lost" is staged: the send gets a 503, and while the executor waits out
    the recvWindow the entry appears on the exchange under its client order id (as the
    first attempt would have executed it)."""
    hooks = CreateRetryHooks()
    ex, _ = await started_executor(exsim, hooks=hooks, orderTimeoutMs=600)
    try:
        await exsim.step(3)
        cid = ex.ids.for_signal("BTCUSDT", "BTCUSDT-1-enter_long", "entry")
        # draws: the signal pre-check lookup passes, the first send gets a 503.
        await exsim.fault(http_5xx_rate=0.5, seed=seed_for("mh"))

        async def first_attempt_executed():
            await hooks.create_retried.wait()
            await exsim.clear_faults()
            await oracle.create_order(BTC, "market", "buy", 0.012, None, {"clientOrderId": cid})

        stager = asyncio.create_task(first_attempt_executed())
        result = await ex.open_position(entry_request())
        await stager

        assert result.outcome == "opened", result.reason
        assert result.entry.recovered and result.entry.status == "filled"
        assert result.entry.client_order_id == cid and result.entry.attempts == 1
        assert [op for _, op, *_ in hooks.retries] == ["create_order"]
        assert await position_amt(oracle, BTC) == D("0.012")  # not doubled
        assert len(await buys(oracle)) == 1
        _, [stop] = await open_orders(oracle, BTC)
        assert D(stop["quantity"]) == D("0.012")
    finally:
        await ex.close()


async def test_entry_that_timed_out_unexecuted_is_resent_once_with_the_same_client_id(exsim, oracle):
    # 600 ms timeout (= recvWindow) against 1.2 s of latency: the request never executes;
    # after the window the lookup finds nothing and the resend with the same id fills once.
    hooks = CreateRetryHooks()
    ex, _ = await started_executor(exsim, hooks=hooks, orderTimeoutMs=600, maxRetries=1)
    try:
        await exsim.step(3)
        await exsim.fault(latency_ms=1200)

        async def network_recovers():
            await hooks.create_retried.wait()
            await exsim.clear_faults()

        healer = asyncio.create_task(network_recovers())
        result = await ex.open_position(entry_request())
        await healer

        assert result.outcome == "opened", result.reason
        assert result.entry.attempts == 2 and not result.entry.recovered
        assert result.entry.client_order_id == ex.ids.for_signal(
            "BTCUSDT", "BTCUSDT-1-enter_long", "entry")
        [create_error] = [err for _, op, _, _, err in hooks.retries if op == "create_order"]
        assert "RequestTimeout" in create_error
        assert await position_amt(oracle, BTC) == D("0.012")
        [buy] = await buys(oracle)
        order = await oracle.fetch_order(buy["order"], BTC)
        assert order["clientOrderId"] == result.entry.client_order_id
    finally:
        await ex.close()


@pytest.mark.parametrize("fault", ["http_5xx_rate", "http_429_rate"])
async def test_transient_error_is_retried_with_backoff_and_fills_exactly_once(exsim, oracle, fault):
    hooks = RecordingHooks()
    ex, _ = await started_executor(exsim, hooks=hooks, orderTimeoutMs=1000)
    try:
        await exsim.step(3)
        # draws: the signal pre-check lookup passes, the first send fails.
        await exsim.fault(**{fault: 0.5, "seed": seed_for("mh"), "retry_after_s": 0})
        result = await ex.open_position(entry_request())

        assert result.outcome == "opened", result.reason
        assert result.entry.attempts == 2
        [(_, operation, attempt, delay_ms, error)] = hooks.retries
        assert (operation, attempt) == ("create_order", 1) and delay_ms > 0
        assert ("DDoSProtection" if fault == "http_429_rate" else "OperationFailed") in error
        assert await position_amt(oracle, BTC) == D("0.012")
        assert len(await buys(oracle)) == 1
    finally:
        await ex.close()


async def test_retries_are_bounded_and_end_in_a_failed_result(exsim, oracle):
    hooks = RecordingHooks()
    ex, _ = await started_executor(exsim, hooks=hooks, orderTimeoutMs=500, maxRetries=1)
    try:
        await exsim.step(3)
        await exsim.fault(http_429_rate=1.0, retry_after_s=0)
        result = await ex.open_position(entry_request())
        await exsim.clear_faults()

        assert result.outcome == "failed"
        assert (result.entry.status, result.entry.attempts) == ("failed", 2)
        assert hooks.rejects[-1][2] is None  # no exchange code: it never answered
        assert await position_amt(oracle, BTC) == 0
        assert ex.position("BTCUSDT").is_flat
    finally:
        await ex.close()


async def test_restarted_executor_finds_its_position_and_stop(exsim, oracle):
    first, _ = await started_executor(exsim)
    await exsim.step(3)
    opened = await first.open_position(entry_request())
    moved = await first.move_stop("BTCUSDT", opened.stop.stop_price + 50)
    await first.close()

    second, found = await started_executor(exsim)
    try:
        view = found.position("BTCUSDT")
        assert (view.side, view.qty, view.entry_price) == ("long", D("0.012"), opened.entry.avg_price)
        assert view.stop_order_id == moved.placed.exchange_order_id
        assert view.stop_price == moved.new_stop
        assert found.orders == ()  # nothing had to be placed or cancelled
        assert [o.leg for o in found.adopted] == ["trail-2"]
        # Its trailing continues with the next generation of client id.
        again = await second.move_stop("BTCUSDT", moved.new_stop + 50)
        assert again.outcome == "moved" and again.placed.leg == "trail-3"
        assert (await second.sync("BTCUSDT")).fills == ()  # old fills are not re-reported
    finally:
        await second.close()


async def test_rehydration_gives_a_stop_to_a_position_that_has_none(exsim, oracle):
    await exsim.step(3)
    await oracle.create_order(BTC, "market", "buy", 0.02)  # opened by hand, no stop
    await exsim.step(2)

    ex, found = await started_executor(exsim, fallback_pct="1")
    try:
        view = found.position("BTCUSDT")
        mark = view.mark_price
        [stop] = found.orders
        assert (stop.type, stop.status, stop.qty, stop.reduce_only) == ("stop_market", "new",
                                                                       D("0.02"), True)
        expected = (mark * D("0.99") / D("0.1")).to_integral_value("ROUND_CEILING") * D("0.1")
        assert stop.stop_price == expected and view.stop_price == expected
        _, [resting] = await open_orders(oracle, BTC)
        assert (resting["orderType"], D(resting["quantity"])) == ("STOP_MARKET", D("0.02"))
    finally:
        await ex.close()


async def test_rehydration_cancels_the_older_of_two_stops_left_by_an_interrupted_trail(exsim, oracle):
    first, _ = await started_executor(exsim)
    await exsim.step(3)
    opened = await first.open_position(entry_request())
    # Simulate a crash between placing trail-2 and cancelling stop: place it by hand.
    cid = first.ids.make(first.position("BTCUSDT").stop_client_order_id.split("-")[2], "trail-2")
    await oracle.create_order(BTC, "market", "sell", 0.012, None,
                              {"stopLossPrice": float(opened.stop.stop_price + 40),
                               "reduceOnly": True, "clientOrderId": cid,
                               "workingType": "CONTRACT_PRICE"})
    await first.close()

    second, found = await started_executor(exsim)
    try:
        assert found.position("BTCUSDT").stop_client_order_id == cid
        [canceled] = found.orders
        assert (canceled.leg, canceled.status) == ("stop", "canceled")
        _, algo = await open_orders(oracle, BTC)
        assert [o["clientAlgoId"] for o in algo] == [cid]
    finally:
        await second.close()


async def test_sync_restores_a_stop_cancelled_outside_the_bot(exsim, oracle):
    ex, _ = await started_executor(exsim)
    try:
        await exsim.step(3)
        opened = await ex.open_position(entry_request())
        await oracle.cancel_order(opened.stop.exchange_order_id, BTC, {"trigger": True})

        synced = await ex.sync("BTCUSDT")

        assert synced.cause == "protected"
        assert synced.position.stop_price == opened.stop.stop_price and synced.position.protected
        _, [stop] = await open_orders(oracle, BTC)
        assert D(stop["triggerPrice"]) == opened.stop.stop_price
    finally:
        await ex.close()


async def test_sync_reports_a_position_closed_outside_the_bot_and_cancels_leftovers(exsim, oracle):
    ex, _ = await started_executor(exsim)
    try:
        await exsim.step(3)
        await ex.open_position(entry_request())
        await oracle.create_order(BTC, "market", "sell", 0.012, None, {"reduceOnly": True})

        synced = await ex.sync("BTCUSDT")

        assert (synced.closed, synced.cause) == (True, "closed_outside")
        assert [f.leg for f in synced.fills] == [None]  # a trade of an order the bot did not send
        assert [o.status for o in synced.orders] == ["canceled"]
        assert await open_orders(oracle, BTC) == ([], [])
    finally:
        await ex.close()


async def test_rehydration_leaves_other_clients_orders_alone(exsim, oracle):
    await exsim.step(3)
    await oracle.create_order(BTC, "limit", "buy", 0.002, 90_000, {"clientOrderId": "manual-1"})
    await oracle.create_order(BTC, "market", "buy", 0.002, None,
                              {"stopLossPrice": 99_000, "clientOrderId": "manual-2"})
    ex, found = await started_executor(exsim)
    try:
        assert found.orders == () and found.adopted == ()
        plain, algo = await open_orders(oracle, BTC)
        assert ([o["clientOrderId"] for o in plain], [o["clientAlgoId"] for o in algo]) == \
            (["manual-1"], ["manual-2"])
    finally:
        await ex.close()


async def test_a_wrong_api_secret_stops_the_executor_at_start_with_the_exchange_code(exsim):
    from tradefleet.workers.execution import AccountSetupError

    with pytest.raises(AccountSetupError, match="execution.positionMode.*-1022") as info:
        await started_executor(exsim, api_secret="not-the-secret")
    assert info.value.code == -1022  # Binance: signature for this request is not valid


async def test_leverage_the_exchange_refuses_stops_the_start_naming_the_setting(exsim):
    from tests.workers._execution import bot_spec
    from tradefleet.workers.execution import (AccountSetupError, Executor, build_exchange,
                                              pct_stop_fallback)

    spec = bot_spec(exsim.rest_url)
    client = build_exchange(spec, exsim.api_key, exsim.api_secret)
    ex = Executor(client, bot_key="test/exec-bot", symbols=["BTCUSDT"],
                  execution=spec.execution, leverage=150)  # BTCUSDT allows at most 125 (ccxt checks the bracket)
    try:
        with pytest.raises(AccountSetupError, match=r"leverage 150 .*sizing.leverage.*between 1 and 125"):
            await ex.start(pct_stop_fallback(1))
    finally:
        await client.close()
