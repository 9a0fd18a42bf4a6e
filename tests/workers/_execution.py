"""Helpers for the execution tests: a bot spec pointed at the shared exsim, an executor
built through the real factory (ccxt over HTTP), a second raw ccxt client as the oracle,
and price levels picked from the recorded klines so triggers happen on known bars."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from tradefleet.api.tradingbot import TradingBotSpec
from tradefleet.workers.execution import Executor, NullHooks, pct_stop_fallback

BOT_KEY = "test/exec-bot"
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TICK = {"BTCUSDT": Decimal("0.1"), "ETHUSDT": Decimal("0.01")}


class RecordingHooks(NullHooks):
    """Hooks that keep what they were told."""

    def __init__(self) -> None:
        self.latencies: list[tuple[str, str, float]] = []
        self.rejects: list[tuple[str, str, int | None, str]] = []
        self.retries: list[tuple[str, str, int, float, str]] = []

    def order_latency(self, symbol, purpose, latency_ms):
        self.latencies.append((symbol, purpose, latency_ms))

    def order_rejected(self, symbol, purpose, code, message):
        self.rejects.append((symbol, purpose, code, message))

    def request_retried(self, symbol, operation, attempt, delay_ms, error):
        self.retries.append((symbol, operation, attempt, delay_ms, error))


def bot_spec(rest_url: str, **execution: Any) -> TradingBotSpec:
    """A paper TradingBot spec on exsim trading BTCUSDT and ETHUSDT at leverage 5."""
    return TradingBotSpec.model_validate({
        "venue": "exsim", "mode": "paper", "symbols": ["BTCUSDT", "ETHUSDT"],
        "strategy": {"name": "ema_cross"}, "sizing": {"leverage": 5},
        "endpoints": {"restUrl": rest_url},
        "execution": {"slippageCapBps": 50, "workingType": "CONTRACT_PRICE", **execution},
    })


async def started_executor(exsim, *, hooks=None, options: dict | None = None,
                           api_key: str | None = None, api_secret: str | None = None,
                           bot_key: str = BOT_KEY, fallback_pct: str = "1",
                           **execution: Any) -> tuple[Executor, Any]:
    """``(executor, rehydrate_result)`` built from the spec by the product's factory."""
    spec = bot_spec(exsim.rest_url, **execution)
    ex = Executor.from_spec(spec, bot_key=bot_key, api_key=api_key or exsim.api_key,
                            api_secret=api_secret or exsim.api_secret, hooks=hooks,
                            exchange_options={"enableRateLimit": False, **(options or {})})
    try:
        result = await ex.start(pct_stop_fallback(fallback_pct))
    except BaseException:
        await ex.close()
        raise
    return ex, result


def first_reach(rows, start: int, level: Decimal, below: bool) -> int:
    """Index of the first bar from ``start`` whose range reaches ``level``."""
    for i in range(start, len(rows)):
        if (Decimal(rows[i]["low"]) <= level) if below else (Decimal(rows[i]["high"]) >= level):
            return i
    raise AssertionError(f"level {level} never reached")


def tick_level(entry: Decimal, pct: Decimal, below: bool, tick: Decimal) -> Decimal:
    raw = entry * (1 - pct) if below else entry * (1 + pct)
    return raw.quantize(tick, ROUND_UP if below else ROUND_DOWN)


async def open_orders(client, market: str) -> tuple[list[dict], list[dict]]:
    """``(plain, conditional)`` raw open orders seen by an independent ccxt client."""
    plain = [o["info"] for o in await client.fetch_open_orders(market)]
    algo = [o["info"] for o in await client.fetch_open_orders(market, params={"trigger": True})]
    return plain, algo


async def position_amt(client, market: str) -> Decimal:
    """Signed position of ``market`` as the exchange reports it (0 when flat)."""
    rows = await client.fetch_positions([market])
    return sum((Decimal(r["info"]["positionAmt"]) for r in rows), Decimal(0))
