"""Execution results → fleet messages (``tradefleet.bus.fleet_messages``), field for field.

The executor's typed results (``tradefleet.workers.execution.results``) already use the
message vocabulary (purpose, status, side, type); this module adds the bot's identity, the
trace id, reference prices and slippage.
"""

from __future__ import annotations

from decimal import Decimal

from tradefleet.workers.execution import Fill, OrderResult, PositionView

from tradefleet.bus.fleet_messages import FillMsg, OrderMsg, PositionMsg

BPS = Decimal(10_000)


def order_msg(namespace: str, bot: str, o: OrderResult, trace_id: str | None) -> OrderMsg:
    """The OrderMsg of one order result. ``price`` is the average fill price when anything
    filled (market orders), else None (stops carry ``stop_price``)."""
    return OrderMsg(
        namespace=namespace, bot=bot, symbol=o.symbol, client_order_id=o.client_order_id,
        exchange_order_id=o.exchange_order_id, purpose=o.purpose, type=o.type, side=o.side,
        reduce_only=o.reduce_only, qty=o.qty, filled_qty=o.filled_qty, price=o.avg_price,
        stop_price=o.stop_price, status=o.status, reject_code=o.reject_code,
        reject_message=o.reject_message, latency_ms=o.latency_ms, sent_ms=o.sent_ms,
        acked_ms=o.acked_ms, time_ms=o.time_ms, signal_id=o.signal_id, trace_id=trace_id,
    )


def slippage_bps(side: str, price: Decimal, reference: Decimal | None) -> Decimal | None:
    """Slippage of a fill against ``reference`` in bps, positive = worse for the bot:
    ``(price − ref) / ref × 10 000`` for a buy, the opposite for a sell."""
    if reference is None or reference <= 0:
        return None
    diff = price - reference if side == "buy" else reference - price
    return (diff / reference * BPS).quantize(Decimal("0.01"))


def fill_msg(namespace: str, bot: str, f: Fill, reference: Decimal | None,
             trace_id: str | None) -> FillMsg:
    """The FillMsg of one trade; ``reference`` is the price it is judged against (the
    signal's bar close for entries and exits, the trigger for stops and take-profits)."""
    return FillMsg(
        namespace=namespace, bot=bot, symbol=f.symbol, trade_id=f.trade_id,
        exchange_order_id=f.exchange_order_id, client_order_id=f.client_order_id,
        purpose=f.purpose, side=f.side, price=f.price, qty=f.qty, fee=f.fee,
        fee_asset=f.fee_asset, realized_pnl=f.realized_pnl, liquidity=f.liquidity,
        reference_price=reference, slippage_bps=slippage_bps(f.side, f.price, reference),
        time_ms=f.time_ms, signal_id=f.signal_id, trace_id=trace_id,
    )


def unrealized(view: PositionView, mark: Decimal | None) -> Decimal:
    """Unrealized PnL of ``view`` at ``mark`` (USDT): (mark − entry) × qty, negated for a
    short; the view's own figure when no mark or entry is known."""
    if view.is_flat:
        return Decimal(0)
    if mark is None or view.entry_price is None:
        return view.unrealized_pnl
    diff = mark - view.entry_price
    return diff * view.qty if view.side == "long" else -diff * view.qty


def signed_qty(view: PositionView) -> Decimal:
    """Position in base units, negative for a short."""
    return -view.qty if view.side == "short" else (view.qty if view.side == "long" else Decimal(0))


def position_msg(namespace: str, bot: str, view: PositionView, mark: Decimal | None,
                 time_ms: int, cause: str) -> PositionMsg:
    """The PositionMsg of an executor view; unrealized PnL at ``mark`` when given."""
    mark = mark if mark is not None else view.mark_price
    return PositionMsg(
        namespace=namespace, bot=bot, symbol=view.symbol, side=view.side, qty=view.qty,
        entry_price=view.entry_price, mark_price=mark, unrealized_pnl=unrealized(view, mark),
        stop_price=view.stop_price, stop_order_id=view.stop_order_id,
        take_profit_prices=view.take_profit_prices, time_ms=time_ms, cause=cause,
    )


__all__ = ["fill_msg", "order_msg", "position_msg", "signed_qty", "slippage_bps", "unrealized"]
