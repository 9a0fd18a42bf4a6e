"""After a scripted session the books balance to the cent:
wallet = initial deposit + Σ realized PnL − Σ commission + Σ funding,
with every term fetched through ccxt (income history and user trades)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .conftest import BTC, ETH, INITIAL

pytestmark = pytest.mark.timeout(120)

CENT = Decimal("0.01")


async def all_income(ex) -> list[dict]:
    rows = await ex.fapiPrivateGetIncome({"limit": 1000})
    assert len(rows) < 1000
    return rows


async def scripted_session(ex, admin) -> None:
    """Entries, adds, partial and full closes on two symbols, a stop, a post-only maker
    fill, and holding through the 08:00 UTC funding."""
    admin.step(5)
    await ex.set_leverage(10, BTC)
    await ex.create_order(BTC, "market", "buy", 0.02)
    await ex.create_order(ETH, "market", "sell", 0.5)
    admin.step(30)
    await ex.create_order(BTC, "market", "buy", 0.01)                       # add
    await ex.create_order(ETH, "market", "buy", 0.2, None, {"reduceOnly": True})  # partial close
    book = await ex.fetch_order_book(BTC, 5)
    await ex.create_order(BTC, "limit", "sell", 0.01, book["asks"][0][0] + 20, {"postOnly": True})
    admin.step(120)
    await ex.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    admin.step(480 - 155 + 5)                                                # through 08:00
    await ex.create_order(BTC, "market", "sell", 0.05)                      # flip to short
    await ex.cancel_all_orders(BTC)
    admin.step(60)
    await ex.create_order(ETH, "market", "buy", 0.3, None, {"reduceOnly": True})  # flat ETH


async def test_wallet_equals_initial_plus_realized_minus_fees_plus_funding(exchange, admin):
    await scripted_session(exchange, admin)
    income = await all_income(exchange)
    by_type: dict[str, Decimal] = {}
    for row in income:
        by_type[row["incomeType"]] = by_type.get(row["incomeType"], Decimal(0)) + Decimal(row["income"])
    assert by_type.get("FUNDING_FEE", Decimal(0)) != 0, "the session must cross a funding time"
    wallet = Decimal((await exchange.fetch_balance())["info"]["totalWalletBalance"])
    expected = (INITIAL + by_type.get("REALIZED_PNL", Decimal(0))
                + by_type.get("COMMISSION", Decimal(0)) + by_type["FUNDING_FEE"])
    assert wallet.quantize(CENT) == expected.quantize(CENT)
    assert wallet == expected  # exact, in fact: integer 1e-8 USDT accounting


async def test_user_trades_agree_with_income_history(exchange, admin):
    await scripted_session(exchange, admin)
    income = await all_income(exchange)
    trades = await exchange.fetch_my_trades(BTC) + await exchange.fetch_my_trades(ETH)
    realized = sum(Decimal(t["info"]["realizedPnl"]) for t in trades)
    fees = sum(Decimal(t["info"]["commission"]) for t in trades)
    assert realized == sum(Decimal(r["income"]) for r in income if r["incomeType"] == "REALIZED_PNL")
    assert -fees == sum(Decimal(r["income"]) for r in income if r["incomeType"] == "COMMISSION")
    funding = sum(Decimal(r["income"]) for r in income if r["incomeType"] == "FUNDING_FEE")
    wallet = Decimal((await exchange.fetch_balance())["info"]["totalWalletBalance"])
    assert wallet.quantize(CENT) == (INITIAL + realized - fees + funding).quantize(CENT)
