"""NATS subject builders and parsers: the one place subject strings are spelled.

Layout (DESIGN.md, "NATS subjects and streams")::

    md.{venue}.{symbol}.kline.{interval}      closed klines              stream MARKET
    md.{venue}.{symbol}.mark|funding|trade|book                          stream MARKET
    fleet.{namespace}.{bot}.order|fill|position|signal|status|heartbeat  stream FLEET
    fleet.cmd.{namespace}.{bot}               pause / resume / drain     stream FLEET
    risk.check                                request/reply, queue "risk" (no stream)
    risk.confirm|position|trade               request/reply, queue "risk" (no stream)
    risk.events                                                          stream RISK
    dlq.{original subject}                    dead letters               stream DLQ

Tokens are validated so a subject can never grow or lose a level: no dots, wildcards
(``*``, ``>``), whitespace or control characters. Venue ids are ccxt ids (``binanceusdm``,
``exsim``), symbols are upper-case exchange ids (``BTCUSDT``), intervals are Binance kline
intervals (``1m`` .. ``1M``), namespaces and bot names are Kubernetes DNS-1123 labels.
Every error is a ``ValueError`` naming the part, the value and the rule.

Dead letters live under their own root ``dlq.>`` (``md.dlq`` in the first draft): the
MARKET and FLEET streams capture ``md.>`` and ``fleet.>`` whole, and JetStream refuses
streams whose subjects overlap, so a dead-letter subject inside ``md.`` could not have a
stream of its own. Keeping the original subject after ``dlq.`` lets an operator filter dead
letters by plane, venue or bot (``dlq.md.>``, ``dlq.fleet.prod.>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MD = "md"
FLEET = "fleet"
CMD = "cmd"
DLQ = "dlq"

RISK_CHECK = "risk.check"
"""Request/reply subject of the shared risk service (served by queue group ``risk``)."""
RISK_QUEUE = "risk"
"""Queue group the risk service instances join on :data:`RISK_CHECK`."""
RISK_EVENTS = "risk.events"
"""Risk decisions and halts (stream RISK)."""

# -- risk service reports (added with the risk service, workers/risk/protocol.py) ----------
RISK_CONFIRM = "risk.confirm"
"""Request/reply: a bot confirms (or releases) a reservation (queue group ``risk``)."""
RISK_POSITION = "risk.position"
"""Request/reply: a bot reports its signed notional on a symbol (queue group ``risk``)."""
RISK_TRADE = "risk.trade"
"""Request/reply: a bot reports a closed trade's realized PnL (queue group ``risk``)."""
RISK_REQUESTS: tuple[str, ...] = (RISK_CHECK, RISK_CONFIRM, RISK_POSITION, RISK_TRADE)
"""Every request/reply subject the risk service serves."""
# -- end of risk service additions ---------------------------------------------------------

MarketKind = Literal["kline", "mark", "funding", "trade", "book"]
FleetKind = Literal["order", "fill", "position", "signal", "status", "heartbeat"]

MARKET_KINDS: frozenset[str] = frozenset({"kline", "mark", "funding", "trade", "book"})
"""Market-data kinds; ``kline`` takes an interval token after it."""
FLEET_KINDS: frozenset[str] = frozenset(
    {"order", "fill", "position", "signal", "status", "heartbeat"}
)
KLINE_INTERVALS: tuple[str, ...] = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)
"""Kline intervals of Binance USDⓈ-M (GET /fapi/v1/klines ``interval``), ccxt timeframes."""

_VENUE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_]{1,31}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_FORBIDDEN = re.compile(r"[.*>\s\x00-\x1f\x7f]")


def _token(part: str, value: object) -> str:
    """Reject anything that would break the subject's token structure."""
    if not isinstance(value, str):
        raise ValueError(f"{part} must be a string, got {type(value).__name__} {value!r}")
    if value == "":
        raise ValueError(f"{part} must not be empty")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"{part} {value!r} contains {bad.group()!r}: subject tokens may not contain dots, "
            "wildcards (* >), whitespace or control characters"
        )
    return value


def check_venue(venue: str) -> str:
    """Return ``venue`` if it is a ccxt exchange id (lower-case, e.g. ``binanceusdm``).

    Raises ``ValueError`` naming the venue otherwise.
    """
    _token("venue", venue)
    if not _VENUE.match(venue):
        raise ValueError(
            f"venue {venue!r} must be a ccxt exchange id: lower-case letters, digits, '_' "
            "(e.g. binanceusdm, exsim)"
        )
    return venue


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is an upper-case exchange symbol id (``BTCUSDT``).

    ccxt unified symbols (``BTC/USDT:USDT``) and lower-case ids are refused with a
    ``ValueError`` naming the symbol: subjects carry the exchange's own id.
    """
    _token("symbol", symbol)
    if not _SYMBOL.match(symbol):
        raise ValueError(
            f"symbol {symbol!r} must be the exchange's upper-case id: A-Z, 0-9, '_' "
            "(e.g. BTCUSDT, not btcusdt or BTC/USDT:USDT)"
        )
    return symbol


def check_interval(interval: str) -> str:
    """Return ``interval`` if it is a Binance kline interval (:data:`KLINE_INTERVALS`)."""
    _token("interval", interval)
    if interval not in KLINE_INTERVALS:
        raise ValueError(
            f"interval {interval!r} is not a kline interval; "
            f"use one of {', '.join(KLINE_INTERVALS)}"
        )
    return interval


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a DNS-1123 label other than ``cmd``.

    ``cmd`` is reserved: ``fleet.cmd.{namespace}.{bot}`` carries commands, so a namespace
    called ``cmd`` would make ``fleet.cmd.x.order`` ambiguous.
    """
    _token("namespace", namespace)
    if not _DNS_LABEL.match(namespace):
        raise ValueError(
            f"namespace {namespace!r} must be a Kubernetes DNS-1123 label "
            "(lower-case letters, digits, '-', at most 63 characters)"
        )
    if namespace == CMD:
        raise ValueError("namespace 'cmd' is reserved for fleet.cmd.{namespace}.{bot} commands")
    return namespace


def check_bot(bot: str) -> str:
    """Return ``bot`` if it is a DNS-1123 label (the TradingBot's metadata.name)."""
    _token("bot", bot)
    if not _DNS_LABEL.match(bot):
        raise ValueError(
            f"bot {bot!r} must be a Kubernetes DNS-1123 label "
            "(lower-case letters, digits, '-', at most 63 characters)"
        )
    return bot


def _kind(part: str, kind: str, allowed: frozenset[str]) -> str:
    _token(part, kind)
    if kind not in allowed:
        raise ValueError(f"{part} {kind!r} is not one of {', '.join(sorted(allowed))}")
    return kind


# -- builders ------------------------------------------------------------------------------


def kline(venue: str, symbol: str, interval: str) -> str:
    """``md.{venue}.{symbol}.kline.{interval}``: closed klines of one symbol and interval."""
    return f"{MD}.{check_venue(venue)}.{check_symbol(symbol)}.kline.{check_interval(interval)}"


def market(venue: str, symbol: str, kind: str) -> str:
    """``md.{venue}.{symbol}.{kind}`` for kind ``mark``, ``funding``, ``trade`` or ``book``.

    Use :func:`kline` for klines (they carry an interval).
    """
    if kind == "kline":
        raise ValueError(
            "kind 'kline' needs an interval: use subjects.kline(venue, symbol, interval)"
        )
    _kind("kind", kind, MARKET_KINDS - {"kline"})
    return f"{MD}.{check_venue(venue)}.{check_symbol(symbol)}.{kind}"


def fleet(namespace: str, bot: str, kind: str) -> str:
    """``fleet.{namespace}.{bot}.{kind}``: a bot's order, fill, position, signal, status or
    heartbeat events."""
    _kind("kind", kind, FLEET_KINDS)
    return f"{FLEET}.{check_namespace(namespace)}.{check_bot(bot)}.{kind}"


def command(namespace: str, bot: str) -> str:
    """``fleet.cmd.{namespace}.{bot}``: pause / resume / drain / kill commands to one bot.

    Commands are stored in stream FLEET, so a restarting bot reads the latest one for its
    subject (``js.get_last_msg("FLEET", subject)``) before consuming new ones.
    """
    return f"{FLEET}.{CMD}.{check_namespace(namespace)}.{check_bot(bot)}"


def dlq(subject: str) -> str:
    """``dlq.{subject}``: where a message that could not be processed on ``subject`` goes.

    The original subject must be concrete (no wildcards); it is kept whole so dead letters
    can be filtered like the originals.
    """
    if not isinstance(subject, str) or not subject:
        raise ValueError(f"subject to dead-letter must be a non-empty string, got {subject!r}")
    for i, token in enumerate(subject.split(".")):
        _token(f"subject token {i} of {subject!r}", token)
    if subject.startswith(DLQ + "."):
        return subject  # already a dead letter: never nest dlq.dlq.
    return f"{DLQ}.{subject}"


# -- consumer filters ----------------------------------------------------------------------


def md_filter(
    venue: str | None = None,
    symbol: str | None = None,
    kind: str | None = None,
    interval: str | None = None,
) -> str:
    """A consumer filter over market data; ``None`` means any (``*``).

    ``md_filter()`` is ``md.*.*.>`` (every market subject); ``md_filter("exsim", kind="kline")``
    is ``md.exsim.*.kline.*``; ``md_filter(kind="mark")`` is ``md.*.*.mark``.
    """
    v = check_venue(venue) if venue is not None else "*"
    s = check_symbol(symbol) if symbol is not None else "*"
    if interval is not None and kind not in (None, "kline"):
        raise ValueError(f"interval {interval!r} applies only to kind 'kline', not {kind!r}")
    if kind is None and interval is None:
        return f"{MD}.{v}.{s}.>"
    if kind is None or kind == "kline":
        i = check_interval(interval) if interval is not None else "*"
        return f"{MD}.{v}.{s}.kline.{i}"
    _kind("kind", kind, MARKET_KINDS)
    return f"{MD}.{v}.{s}.{kind}"


def fleet_filter(
    namespace: str | None = None, bot: str | None = None, kind: str | None = None
) -> str:
    """A consumer filter over bot events (``fleet.{ns}.{bot}.{kind}``); ``None`` means any.

    Note ``fleet_filter()`` (``fleet.*.*.*``) also matches commands ``fleet.cmd.{ns}.{bot}``:
    filter on a kind, or skip subjects whose second token is ``cmd``.
    """
    ns = check_namespace(namespace) if namespace is not None else "*"
    b = check_bot(bot) if bot is not None else "*"
    k = _kind("kind", kind, FLEET_KINDS) if kind is not None else "*"
    return f"{FLEET}.{ns}.{b}.{k}"


# -- parser --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """A parsed subject. ``plane`` is ``md``, ``fleet``, ``cmd``, ``risk`` or ``dlq``.

    Fields that do not apply to the plane are ``None``; for ``dlq`` ``original`` holds the
    parsed original subject.
    """

    plane: str
    kind: str
    venue: str | None = None
    symbol: str | None = None
    interval: str | None = None
    namespace: str | None = None
    bot: str | None = None
    original: Subject | None = None


def parse(subject: str) -> Subject:
    """Parse any tradefleet subject into a :class:`Subject`.

    Raises ``ValueError`` naming the subject and the bad part (unknown root, wrong number
    of tokens, bad venue/symbol/interval/namespace/bot/kind).
    """
    if not isinstance(subject, str) or not subject:
        raise ValueError(f"subject must be a non-empty string, got {subject!r}")
    try:
        return _parse(subject)
    except ValueError as exc:
        raise ValueError(f"subject {subject!r}: {exc}") from None


def _parse(subject: str) -> Subject:
    tokens = subject.split(".")
    root = tokens[0]
    if root == MD:
        if len(tokens) == 5 and tokens[3] == "kline":
            return Subject(
                plane=MD,
                kind="kline",
                venue=check_venue(tokens[1]),
                symbol=check_symbol(tokens[2]),
                interval=check_interval(tokens[4]),
            )
        if len(tokens) == 4:
            kind = tokens[3]
            if kind == "kline":
                raise ValueError(
                    "kline subjects end with an interval: md.{venue}.{symbol}.kline.{interval}"
                )
            return Subject(
                plane=MD,
                kind=_kind("kind", kind, MARKET_KINDS),
                venue=check_venue(tokens[1]),
                symbol=check_symbol(tokens[2]),
            )
        raise ValueError(
            "market subjects are md.{venue}.{symbol}.kline.{interval} or "
            "md.{venue}.{symbol}.mark|funding|trade|book"
        )
    if root == FLEET:
        if len(tokens) == 4 and tokens[1] == CMD:
            return Subject(
                plane=CMD,
                kind="command",
                namespace=check_namespace(tokens[2]),
                bot=check_bot(tokens[3]),
            )
        if len(tokens) == 4:
            return Subject(
                plane=FLEET,
                kind=_kind("kind", tokens[3], FLEET_KINDS),
                namespace=check_namespace(tokens[1]),
                bot=check_bot(tokens[2]),
            )
        raise ValueError(
            "fleet subjects are fleet.{namespace}.{bot}.{kind} or fleet.cmd.{namespace}.{bot}"
        )
    if subject in RISK_REQUESTS:  # risk.check, risk.confirm, risk.position, risk.trade
        return Subject(plane="risk", kind=tokens[1])
    if subject == RISK_EVENTS:
        return Subject(plane="risk", kind="events")
    if root == DLQ:
        if len(tokens) < 2:
            raise ValueError("dead-letter subjects are dlq.{original subject}")
        rest = ".".join(tokens[1:])
        for i, token in enumerate(tokens[1:]):
            _token(f"original subject token {i}", token)
        try:
            original = _parse(rest)
        except ValueError:
            original = None  # a dead letter may come from any subject, even a malformed one
        return Subject(plane=DLQ, kind="dead_letter", original=original)
    raise ValueError(f"unknown root {root!r}; expected md, fleet, risk or dlq")
