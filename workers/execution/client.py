"""The exchange client: ccxt's async ``binanceusdm``, configured from a TradingBot spec.

The same client class trades exsim, Binance testnet and Binance live; only configuration
differs (:func:`build_exchange`):

==========  ==================================================================================
mode        configuration
==========  ==================================================================================
paper       venue ``exsim``: the ``fapiPublic*``/``fapiPrivate*`` URLs point at
            ``spec.endpoints.restUrl`` (README-exsim.md, "Point ccxt at it"), ``fetchCurrencies``
            off (exsim has no ``/sapi`` wallet API), and ccxt's USDⓈ-M error table merged in
            (ccxt picks it by host, which the override changes)
testnet     ``set_sandbox_mode(True)`` (testnet.binancefuture.com), ``fetchCurrencies`` off
live        ccxt's defaults
==========  ==================================================================================

A ``restUrl`` on a binanceusdm venue replaces the host the same way as for exsim (a
proxy, or a testnet mirror); without one testnet and live use ccxt's own URLs.

Every mode: ``timeout`` = ``execution.orderTimeoutMs`` (per request), ``recvWindow`` =
the same (so a request that reaches Binance later than the client waited is refused, which
makes a lookup after a timeout conclusive; see :mod:`.orders`), ``defaultType`` swap.

Keys come from the caller (the bot reads ``TRADEFLEET_API_KEY``/``TRADEFLEET_API_SECRET``,
see ``tradefleet.workers.bot.config``); this module never logs or stores them elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt

from tradefleet.api.tradingbot import Mode, PositionMode, TradingBotSpec

from .errors import NO_NEED_TO_CHANGE, AccountSetupError, binance_error

__all__ = ["BinanceUsdm", "build_exchange", "exsim_urls", "prepare_account", "configure_account",
           "AccountSetup"]

log = logging.getLogger("tradefleet.execution")


class BinanceUsdm(ccxt.binanceusdm):
    """ccxt ``binanceusdm`` that keeps Binance's error body on the exception it raises.

    ccxt matches some errors by message text and then drops the code; the executor needs
    the code (-2021, -4116, -2011...) to decide, so ``handle_errors`` attaches the raw body
    as ``exc.binance_body``. Nothing else changes.
    """

    def handle_errors(self, code, reason, url, method, headers, body, response,
                      requestHeaders, requestBody):  # noqa: N803 - ccxt's signature
        try:
            return super().handle_errors(code, reason, url, method, headers, body, response,
                                         requestHeaders, requestBody)
        except ccxt.BaseError as exc:
            exc.binance_body = body
            raise


def exsim_urls(rest_url: str) -> dict[str, Any]:
    """The ``urls`` override pointing ccxt's USDⓈ-M REST APIs at ``rest_url`` (the same
    table as ``tradefleet.exsim.server.ccxt_urls``; spelled here because workers must not
    depend on the simulator package)."""
    base = rest_url.rstrip("/")
    return {"api": {
        "fapiPublic": f"{base}/fapi/v1", "fapiPublicV2": f"{base}/fapi/v2",
        "fapiPublicV3": f"{base}/fapi/v3", "fapiPrivate": f"{base}/fapi/v1",
        "fapiPrivateV2": f"{base}/fapi/v2", "fapiPrivateV3": f"{base}/fapi/v3",
    }}


def build_exchange(spec: TradingBotSpec, api_key: str, api_secret: str, *,
                   options: Mapping[str, Any] | None = None) -> BinanceUsdm:
    """A configured (not yet connected) async ccxt client for ``spec``.

    ``options``: extra ccxt settings merged last (tests pass ``{"enableRateLimit":
    False}``; a nested ``"options"`` dict is merged into ccxt's ``options``).
    Raises ValueError naming ``endpoints.restUrl`` when venue exsim has no URL, or
    naming the keys when one is empty. The caller must ``await client.close()``.
    """
    if not api_key or not api_secret:
        raise ValueError("api_key and api_secret must both be non-empty (the bot reads them "
                         "from TRADEFLEET_API_KEY / TRADEFLEET_API_SECRET)")
    timeout = spec.execution.order_timeout_ms
    ccxt_options: dict[str, Any] = {"defaultType": "swap", "recvWindow": timeout,
                                    "fetchCurrencies": False}
    # ccxt's client-side throttle spaces Binance requests ~50 ms per weight unit: needed
    # against Binance, pure delay against exsim (which has no limits; its 429 fault
    # injection is handled by the retry policy), where it capped a bot at a few bars/s.
    config: dict[str, Any] = {"apiKey": api_key, "secret": api_secret, "timeout": timeout,
                              "enableRateLimit": spec.venue != "exsim"}
    if spec.endpoints.rest_url:
        config["urls"] = exsim_urls(spec.endpoints.rest_url)
    elif spec.venue == "exsim":
        raise ValueError("endpoints.restUrl is required for venue exsim "
                         "(e.g. http://exsim:9010)")
    extra = dict(options or {})
    ccxt_options.update(extra.pop("options", {}) or {})
    config.update(extra)
    config["options"] = ccxt_options
    exchange = BinanceUsdm(config)
    if spec.mode is Mode.TESTNET and "urls" not in config:
        exchange.set_sandbox_mode(True)
    if "urls" in config:
        # ccxt picks its USDⓈ-M error table by host; with our own host give it that table.
        exact = exchange.exceptions["exact"]
        exchange.exceptions["exact"] = {**exact, **exchange.exceptions["linear"]["exact"]}
        broad = exchange.exceptions["broad"]
        exchange.exceptions["broad"] = {**broad, **exchange.exceptions["linear"].get("broad", {})}
    return exchange


@dataclass(frozen=True, slots=True)
class AccountSetup:
    """What :func:`prepare_account` did: ``leverage`` per symbol (as set), ``hedged``
    position mode in effect, and messages for settings the exchange said were already so."""

    leverage: dict[str, int]
    hedged: bool
    notes: tuple[str, ...] = ()


async def prepare_account(exchange: ccxt.binanceusdm, spec: TradingBotSpec,
                          markets: Iterable[str]) -> AccountSetup:
    """Set the position mode (``execution.positionMode``) and each symbol's leverage
    (``sizing.leverage``) on the account; see :func:`configure_account`."""
    return await configure_account(exchange, markets, leverage=spec.sizing.leverage,
                                   position_mode=spec.execution.position_mode)


async def configure_account(exchange: ccxt.binanceusdm, markets: Iterable[str], *,
                            leverage: int, position_mode: PositionMode) -> AccountSetup:
    """Set ``position_mode`` and ``leverage`` on every market (ccxt unified symbols, e.g.
    ``BTC/USDT:USDT``).

    The position mode is read first and only changed when it differs (Binance refuses a
    change while positions or orders are open, -4068). "No need to change" answers (-4059,
    -4046) count as success. Raises :class:`AccountSetupError` with Binance's code
    and message otherwise.
    """
    notes: list[str] = []
    want_hedged = position_mode is PositionMode.HEDGE
    try:
        current = await exchange.fetch_position_mode()
        hedged = bool(current.get("hedged"))
        if hedged != want_hedged:
            await exchange.set_position_mode(want_hedged)
            hedged = want_hedged
    except ccxt.BaseError as exc:
        code, msg = binance_error(exc)
        if code in NO_NEED_TO_CHANGE:
            hedged = want_hedged
            notes.append(f"position mode: {msg}")
        else:
            raise AccountSetupError(
                f"cannot set position mode {'hedge' if want_hedged else 'one-way'} "
                f"(execution.positionMode): {code} {msg}", code) from None
    applied: dict[str, int] = {}
    for market in markets:
        try:
            await exchange.set_leverage(leverage, market)
        except ccxt.BaseError as exc:
            code, msg = binance_error(exc)
            if code not in NO_NEED_TO_CHANGE:
                raise AccountSetupError(f"cannot set leverage {leverage} on {market} "
                                        f"(sizing.leverage): {code} {msg}", code) from None
            notes.append(f"leverage {market}: {msg}")
        applied[market] = leverage
    return AccountSetup(leverage=applied, hedged=hedged, notes=tuple(notes))
