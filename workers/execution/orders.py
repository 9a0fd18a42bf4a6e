"""One order placed, cancelled or looked up — idempotently — through ccxt.

**Placement** (:meth:`OrderGateway.place`). Every order carries a deterministic client
order id (:mod:`.client_ids`). On a transient failure the gateway never re-sends blindly:

1. the request failed with a timeout, a connection error, a 5xx or -1001/-1007 (outcome
   unknown): wait until the request's ``recvWindow`` has passed since it was sent (the
   exchange refuses it after that, so it can no longer execute), then look the order up
   by ``origClientOrderId`` (conditional orders: ``clientAlgoId``). Found: that is the
   order (``recovered=True``), whatever its state. Not found (-2013): re-send with the
   **same** client order id after a backoff;
2. HTTP 429/418 (refused before execution): back off and re-send;
3. -4116 "ClientOrderId is duplicated": an earlier attempt is open; look it up and use it;
4. any other exchange error (InvalidOrder, InsufficientFunds, BadRequest...): final, a
   ``rejected`` result with Binance's code and message, never retried.

If the lookup itself cannot get an answer, the gateway stops and reports ``failed``
rather than risk a double fill; the executor then reconciles from the position.

**Conditional orders** (STOP_MARKET, TAKE_PROFIT_MARKET) go through ccxt's algo route
(``POST /fapi/v1/algoOrder``, ``algoType=CONDITIONAL``, ``triggerPrice``, ``clientAlgoId``;
Binance "New Algo Order", ccxt 4.5 ``create_order`` with ``stopLossPrice`` /
``takeProfitPrice``), are listed with ``fetch_open_orders(..., {"trigger": True})`` and
cancelled with ``cancel_order(id, symbol, {"trigger": True})``. Once triggered, the algo
order's ``actualOrderId`` is the plain order that traded; its trades carry that id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt

from .errors import (DUPLICATE_CLIENT_ID, UNKNOWN_ORDER_CODES, ExecutionError, binance_error,
                     error_info, is_rate_limited, is_transient)
from .hooks import ExecutionHooks
from .results import Fill, OrderPurpose, OrderResult, OrderSide, OrderStatus, OrderType
from .retry import RetryPolicy, retry_call

__all__ = ["OrderIntent", "OrderGateway", "purpose_of_leg", "RECV_WINDOW_MARGIN_MS"]

log = logging.getLogger("tradefleet.execution")

RECV_WINDOW_MARGIN_MS = 250
"""Extra wait beyond ``recvWindow`` before a lookup is trusted (clock skew, queueing)."""

_STATUS: dict[str, OrderStatus] = {
    "NEW": "new", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
    "CANCELED": "canceled", "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired",
    "REJECTED": "rejected",
}
_TYPES: dict[str, OrderType] = {"MARKET": "market", "STOP_MARKET": "stop_market",
                                "TAKE_PROFIT_MARKET": "take_profit_market"}
_CONDITIONAL: frozenset[str] = frozenset({"stop_market", "take_profit_market"})


def purpose_of_leg(leg: str) -> OrderPurpose:
    """The :data:`~.results.OrderPurpose` of a client-order-id leg."""
    name = leg.partition("-")[0]
    if name == "entry":
        return "entry"
    if name == "stop":
        return "stop"
    if name == "trail":
        return "trail"
    if name.startswith("tp"):
        return "take_profit"
    if name in ("drain", "reverse"):
        return name  # type: ignore[return-value]
    return "exit"  # exit, rollback, stopfail


def _dec(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order to send. ``symbol`` exchange id, ``market`` ccxt unified symbol; ``qty``
    base units and ``stop_price`` USDT, already rounded to the filters; ``position_side``
    ``LONG``/``SHORT`` in hedge mode (then ``reduce_only`` is not sent, Binance refuses it
    there), None in one-way mode."""

    symbol: str
    market: str
    purpose: OrderPurpose
    leg: str
    client_order_id: str
    side: OrderSide
    type: OrderType
    qty: Decimal
    stop_price: Decimal | None = None
    reduce_only: bool = False
    position_side: str | None = None
    working_type: str | None = None
    signal_id: str | None = None
    reason: str = ""

    @property
    def conditional(self) -> bool:
        return self.type in _CONDITIONAL


class OrderGateway:
    """Sends, cancels and reads orders for the executor (one ccxt client, any symbol).

    ``recv_window_ms`` must equal the client's ``options.recvWindow`` (the factory sets
    both from ``execution.orderTimeoutMs``).
    """

    def __init__(self, exchange: Any, *, retry: RetryPolicy, hooks: ExecutionHooks,
                 recv_window_ms: int) -> None:
        self.exchange = exchange
        self.retry = retry
        self.hooks = hooks
        self.recv_window_ms = recv_window_ms

    # -- placement --------------------------------------------------------------------------
    async def place(self, intent: OrderIntent) -> OrderResult:
        """Send ``intent`` once, idempotently (see the module docstring). Never raises for
        exchange answers: the result's ``status`` is ``rejected`` (code/message set) or
        ``failed`` (no answer) when no order exists."""
        sent_ms: int | None = None
        last_send = 0.0
        last_exc: BaseException | None = None
        must_look = False
        attempts = 0
        for attempt in range(1, self.retry.attempts + 1):
            if must_look:
                found = await self._lookup_after_window(intent, last_send)
                if found is _UNKNOWN:
                    return self._failed(intent, last_exc, attempts, sent_ms,
                                        "outcome unknown: the order could not be looked up "
                                        "after a lost response; not re-sent")
                if found is not None:
                    return replace(found, attempts=attempts, recovered=True, sent_ms=sent_ms)
            attempts = attempt
            last_send = time.time()
            sent_ms = sent_ms or int(last_send * 1000)
            t0 = time.perf_counter()
            try:
                raw = await self._send(intent)
            except Exception as exc:  # noqa: BLE001 - classified below
                last_exc = exc
                code, msg = binance_error(exc)
                if code == DUPLICATE_CLIENT_ID:
                    found = await self._lookup(intent)
                    if isinstance(found, OrderResult):
                        return replace(found, attempts=attempt, recovered=True, sent_ms=sent_ms)
                if not is_transient(exc):
                    return self._rejected(intent, code, msg, attempt, sent_ms)
                must_look = not is_rate_limited(exc)
                if attempt < self.retry.attempts:
                    delay = self.retry.delay_ms(attempt, exc)
                    self._retried(intent, attempt, delay, exc)
                    await asyncio.sleep(delay / 1000)
                continue
            latency = (time.perf_counter() - t0) * 1000
            acked = _wall_ms()
            self._latency(intent, latency)
            result = self.parse(raw, intent)
            return replace(result, latency_ms=latency, sent_ms=sent_ms, acked_ms=acked,
                           attempts=attempt)
        if must_look:
            found = await self._lookup_after_window(intent, last_send)
            if isinstance(found, OrderResult):
                return replace(found, attempts=attempts, recovered=True, sent_ms=sent_ms)
        return self._failed(intent, last_exc, attempts, sent_ms,
                            f"no answer after {attempts} attempt(s)")

    async def _send(self, intent: OrderIntent) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": intent.client_order_id}
        if intent.position_side:
            params["positionSide"] = intent.position_side
        elif intent.reduce_only:
            params["reduceOnly"] = True
        if intent.type == "stop_market":
            params["stopLossPrice"] = _plain(intent.stop_price)
        elif intent.type == "take_profit_market":
            params["takeProfitPrice"] = _plain(intent.stop_price)
        if intent.conditional and intent.working_type:
            params["workingType"] = intent.working_type
        order = await self.exchange.create_order(intent.market, "market", intent.side,
                                                 _plain(intent.qty), None, params)
        return order.get("info") or {}

    async def existing(self, intent: OrderIntent) -> OrderResult | None:
        """The order already on the exchange under the intent's client order id, or None
        (also when the lookup gets no answer: the caller then sends, and :meth:`place`
        stays idempotent on its own)."""
        found = await self._lookup(intent)
        return found if isinstance(found, OrderResult) else None

    async def _lookup_after_window(self, intent: OrderIntent, last_send: float):
        wait = last_send + (self.recv_window_ms + RECV_WINDOW_MARGIN_MS) / 1000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return await self._lookup(intent)

    async def _lookup(self, intent: OrderIntent):
        """The order under the intent's client id: OrderResult, None (does not exist), or
        ``_UNKNOWN`` (no answer)."""
        try:
            raw = await self.fetch_by_client_id(intent.symbol, intent.market,
                                                intent.client_order_id, intent.conditional)
        except ExecutionError as exc:
            log.warning("order lookup failed", extra={"client_order_id": intent.client_order_id,
                                                      "error": str(exc)})
            return _UNKNOWN
        if raw is None:
            return None
        return self.parse(raw, intent)

    # -- reading ----------------------------------------------------------------------------
    async def fetch_by_client_id(self, symbol: str, market: str, client_order_id: str,
                                 conditional: bool) -> dict[str, Any] | None:
        """Raw Binance order (algo shape when ``conditional``) or None when unknown
        (-2013). Retries transient errors; raises RetriesExhausted /
        ExchangeRequestError (both ExecutionError)."""
        params = ({"trigger": True, "clientAlgoId": client_order_id} if conditional
                  else {"origClientOrderId": client_order_id})
        return await self._fetch(symbol, market, None, params)

    async def fetch_by_id(self, symbol: str, market: str, order_id: str,
                          conditional: bool) -> dict[str, Any] | None:
        """Raw Binance order by ``orderId`` / ``algoId``; None when unknown."""
        params = {"trigger": True} if conditional else {}
        return await self._fetch(symbol, market, order_id, params)

    async def _fetch(self, symbol: str, market: str, order_id: str | None,
                     params: dict[str, Any]) -> dict[str, Any] | None:
        async def call():
            try:
                order = await self.exchange.fetch_order(order_id, market, dict(params))
            except ccxt.BaseError as exc:
                code, _ = binance_error(exc)
                if code in UNKNOWN_ORDER_CODES or isinstance(exc, ccxt.OrderNotFound):
                    return None
                raise
            return order.get("info") or {}

        return await retry_call(call, policy=self.retry, hooks=self.hooks, symbol=symbol,
                                operation="fetch_order")

    async def open_orders(self, symbol: str, market: str) -> tuple[list[dict], list[dict]]:
        """Raw open orders of ``market``: ``(plain, conditional)`` (conditional in the algo
        shape). Retries transient errors; raises ExecutionError subclasses."""
        async def plain():
            return [o.get("info") or {} for o in await self.exchange.fetch_open_orders(market)]

        p = await retry_call(plain, policy=self.retry, hooks=self.hooks, symbol=symbol,
                             operation="fetch_open_orders")
        return p, await self.open_conditional(symbol, market)

    async def open_conditional(self, symbol: str, market: str) -> list[dict]:
        """Raw open conditional (algo) orders of ``market``."""
        async def algo():
            return [o.get("info") or {} for o in
                    await self.exchange.fetch_open_orders(market, None, None, {"trigger": True})]

        return await retry_call(algo, policy=self.retry, hooks=self.hooks, symbol=symbol,
                                operation="fetch_open_algo_orders")

    async def position_rows(self, symbol: str, market: str) -> list[dict]:
        """Raw ``positionRisk`` rows of ``market`` with a non-zero ``positionAmt``."""
        async def call():
            return [p.get("info") or {} for p in await self.exchange.fetch_positions([market])]

        rows = await retry_call(call, policy=self.retry, hooks=self.hooks, symbol=symbol,
                                operation="fetch_positions")
        return [r for r in rows if r.get("symbol", symbol) == symbol
                and (_dec(r.get("positionAmt")) or 0) != 0]

    async def trades_from(self, symbol: str, market: str, from_id: int) -> list[dict]:
        """Raw ``userTrades`` of ``market`` with id >= ``from_id``, oldest first (pages of
        1000 until exhausted)."""
        out: list[dict] = []
        while True:
            async def call(start=from_id):
                return [t.get("info") or {} for t in await self.exchange.fetch_my_trades(
                    market, None, 1000, {"fromId": start})]

            page = await retry_call(call, policy=self.retry, hooks=self.hooks, symbol=symbol,
                                    operation="fetch_my_trades")
            out.extend(page)
            if len(page) < 1000:
                return out
            from_id = int(page[-1]["id"]) + 1

    async def last_trade_id(self, symbol: str, market: str) -> int:
        """Id of the account's latest trade on ``market``; -1 when there is none."""
        async def call():
            return await self.exchange.fetch_my_trades(market, None, 1)

        trades = await retry_call(call, policy=self.retry, hooks=self.hooks, symbol=symbol,
                                  operation="fetch_my_trades")
        return max((int(t["info"]["id"]) for t in trades), default=-1)

    # -- cancelling -------------------------------------------------------------------------
    async def cancel(self, template: OrderResult, market: str, reason: str) -> OrderResult:
        """Cancel the order ``template`` describes (``exchange_order_id`` set); returns its
        final state: ``canceled``, or what it became if it was no longer open (a stop that
        triggered comes back ``filled``). Failures come back with ``reject_*`` set and the
        template's status."""
        conditional = template.type in _CONDITIONAL
        params = {"trigger": True} if conditional else {}

        async def call():
            try:
                await self.exchange.cancel_order(template.exchange_order_id, market, dict(params))
                return True
            except ccxt.BaseError as exc:
                code, _ = binance_error(exc)
                if code in UNKNOWN_ORDER_CODES or isinstance(exc, ccxt.OrderNotFound):
                    return False
                raise

        try:
            canceled = await retry_call(call, policy=self.retry, hooks=self.hooks,
                                        symbol=template.symbol, operation="cancel_order")
        except ExecutionError as exc:
            code, msg = error_info(exc)
            return replace(template, reject_code=code, reject_message=msg,
                           reason=f"cancel failed: {msg}")
        if canceled:
            return replace(template, status="canceled", reason=reason)
        # No longer open when we asked: learn what became of it (a stop may have filled).
        try:
            final = await self.resolve(template, market)
        except ExecutionError:
            final = template
        return replace(final, reason=reason)

    async def resolve(self, template: OrderResult, market: str) -> OrderResult:
        """The current state of a known order, following a triggered conditional order to
        the plain order it became (fills, average price). Raises RetriesExhausted."""
        conditional = template.type in _CONDITIONAL
        raw = await self.fetch_by_id(template.symbol, market, template.exchange_order_id,
                                     conditional)
        if raw is None:
            return replace(template, status="expired", reason="unknown to the exchange")
        result = self.parse(raw, None, template=template)
        if conditional:
            actual = str(raw.get("actualOrderId") or "")
            if actual:
                plain = await self.fetch_by_id(template.symbol, market, actual, False)
                if plain is not None:
                    executed = self.parse(plain, None, template=template)
                    result = replace(result, status=executed.status,
                                     filled_qty=executed.filled_qty,
                                     avg_price=executed.avg_price, time_ms=executed.time_ms)
        return result

    # -- parsing ----------------------------------------------------------------------------
    @staticmethod
    def parse(raw: dict[str, Any], intent: OrderIntent | None, *,
              template: OrderResult | None = None) -> OrderResult:
        """An :class:`OrderResult` from a raw Binance order (plain or algo shape). Purpose,
        leg and signal come from ``intent`` or ``template``."""
        algo = "algoId" in raw
        if algo:
            status_name = str(raw.get("algoStatus", "NEW"))
            status: OrderStatus = {"NEW": "new", "CANCELED": "canceled", "EXPIRED": "expired",
                                   "TRIGGERED": "partially_filled", "FINISHED": "filled",
                                   "REJECTED": "rejected"}.get(status_name, "new")
            order_id = str(raw.get("algoId"))
            cid = raw.get("clientAlgoId")
            otype = _TYPES.get(str(raw.get("orderType", "")), "stop_market")
            qty = _dec(raw.get("quantity")) or Decimal(0)
            filled = Decimal(0)
            avg = _dec(raw.get("actualPrice"))
            stop = _dec(raw.get("triggerPrice"))
            time_ms = int(raw.get("updateTime") or raw.get("createTime") or 0) or None
        else:
            status = _STATUS.get(str(raw.get("status", "NEW")), "new")
            order_id = str(raw.get("orderId"))
            cid = raw.get("clientOrderId")
            otype = _TYPES.get(str(raw.get("origType") or raw.get("type") or ""), "market")
            qty = _dec(raw.get("origQty")) or Decimal(0)
            filled = _dec(raw.get("executedQty")) or Decimal(0)
            avg = _dec(raw.get("avgPrice"))
            stop = _dec(raw.get("stopPrice"))
            time_ms = int(raw.get("updateTime") or raw.get("time") or 0) or None
        if avg is not None and avg == 0:
            avg = None
        if stop is not None and stop == 0:
            stop = None
        side = "buy" if str(raw.get("side", "")).upper() == "BUY" else "sell"
        reduce_only = bool(raw.get("reduceOnly")) or bool(raw.get("closePosition"))
        base = intent or template
        if base is not None:
            return OrderResult(
                symbol=base.symbol, purpose=base.purpose, leg=base.leg,
                client_order_id=str(cid or base.client_order_id), side=side, type=otype,
                qty=qty, status=status, reduce_only=reduce_only or base.reduce_only,
                exchange_order_id=order_id, filled_qty=filled, avg_price=avg, stop_price=stop,
                time_ms=time_ms, signal_id=base.signal_id, reason=base.reason)
        return OrderResult(symbol=str(raw.get("symbol", "")), purpose="exit", leg="",
                           client_order_id=str(cid or ""), side=side, type=otype, qty=qty,
                           status=status, reduce_only=reduce_only, exchange_order_id=order_id,
                           filled_qty=filled, avg_price=avg, stop_price=stop, time_ms=time_ms)

    @staticmethod
    def parse_trade(raw: dict[str, Any], symbol: str) -> Fill:
        """A :class:`Fill` from a raw ``userTrades`` row (purpose/leg filled in later)."""
        return Fill(
            symbol=symbol, trade_id=str(raw["id"]), exchange_order_id=str(raw["orderId"]),
            side="buy" if str(raw.get("side", "")).upper() == "BUY" else "sell",
            price=_dec(raw.get("price")) or Decimal(0), qty=_dec(raw.get("qty")) or Decimal(0),
            time_ms=int(raw.get("time") or 0), fee=_dec(raw.get("commission")) or Decimal(0),
            fee_asset=str(raw.get("commissionAsset") or "USDT"),
            realized_pnl=_dec(raw.get("realizedPnl")) or Decimal(0),
            liquidity="maker" if raw.get("maker") in (True, "true") else "taker")

    # -- results without an order -------------------------------------------------------------
    def _rejected(self, intent: OrderIntent, code: int | None, msg: str, attempts: int,
                  sent_ms: int | None) -> OrderResult:
        self._rejected_hook(intent, code, msg)
        return self._empty(intent, "rejected", code, msg, attempts, sent_ms,
                           intent.reason or "refused by the exchange")

    def _failed(self, intent: OrderIntent, exc: BaseException | None, attempts: int,
                sent_ms: int | None, reason: str) -> OrderResult:
        code, msg = binance_error(exc) if exc is not None else (None, reason)
        self._rejected_hook(intent, None, msg)
        return self._empty(intent, "failed", code, msg, attempts, sent_ms, reason)

    @staticmethod
    def _empty(intent: OrderIntent, status: OrderStatus, code: int | None, msg: str,
               attempts: int, sent_ms: int | None, reason: str) -> OrderResult:
        return OrderResult(symbol=intent.symbol, purpose=intent.purpose, leg=intent.leg,
                           client_order_id=intent.client_order_id, side=intent.side,
                           type=intent.type, qty=intent.qty, status=status,
                           reduce_only=intent.reduce_only, stop_price=intent.stop_price,
                           reject_code=code, reject_message=msg, reason=reason,
                           signal_id=intent.signal_id, attempts=attempts, sent_ms=sent_ms)

    # -- hooks (never allowed to fail an order) -----------------------------------------------
    def _latency(self, intent: OrderIntent, ms: float) -> None:
        try:
            self.hooks.order_latency(intent.symbol, intent.purpose, ms)
        except Exception:
            log.exception("order_latency hook failed")

    def _rejected_hook(self, intent: OrderIntent, code: int | None, msg: str) -> None:
        try:
            self.hooks.order_rejected(intent.symbol, intent.purpose, code, msg)
        except Exception:
            log.exception("order_rejected hook failed")

    def _retried(self, intent: OrderIntent, attempt: int, delay: float, exc: BaseException) -> None:
        try:
            self.hooks.request_retried(intent.symbol, "create_order", attempt, delay,
                                       f"{type(exc).__name__}: {exc}")
        except Exception:
            log.exception("request_retried hook failed")


_UNKNOWN = object()


def _plain(d: Decimal | None) -> str:
    if d is None:
        raise ValueError("a price or quantity is missing")
    s = format(Decimal(d).normalize(), "f")
    return s
