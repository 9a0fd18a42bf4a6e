"""The bot's market data: its durable JetStream consumer and the history it warms up from.

Consumer (one per bot, stream MARKET)
-------------------------------------
- Durable name ``bot_{namespace}_{name}`` (DNS labels hold no ``_``, so it is unambiguous);
  filter subjects: for every symbol ``md.{venue}.{symbol}.kline.{interval}``,
  ``md.{venue}.{symbol}.funding`` and ``md.{venue}.{symbol}.mark``.
- Pull consumer, explicit ack, ``max_ack_pending = 1``: one message at a time, in stream
  order. The worker acks a kline only after the bar was fully processed (strategy, orders,
  stop moves, events), so a crash leaves it unacked and the next instance gets it again
  after ``ack_wait``. With a single message in flight JetStream cannot hand a later bar to
  the new instance before the unacked one, so bars are never processed out of order and
  never skipped.
- First start: the consumer begins right after the MARKET stream's last sequence at that
  moment (``DeliverPolicy.BY_START_SEQUENCE``); everything up to it is history.
  Restart: the durable already exists and resumes at its ack floor; history is everything
  up to the ack floor.

Warm-up history
---------------
Before trading, the strategy is fed the bars (and funding) that precede the consumer's
first delivery, without orders: first from MARKET itself (an ephemeral, no-ack consumer
over the same kline and funding subjects, stopping at the history bound), and, when the
stream holds fewer bars than the strategy's look-back, REST klines from the exchange
(``GET /fapi/v1/klines`` through ccxt ``fetch_ohlcv``) for the older part. The latest mark
price comes from the stream's last ``mark`` message.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nats.js import api
from nats.js.errors import NotFoundError
from tradefleet.workers.strategies import Bar

from tradefleet.api import TradingBotSpec
from tradefleet.bus import codec, subjects
from tradefleet.bus.market_messages import FundingMsg, KlineMsg, MarkMsg, decode_market
from tradefleet.bus.streams import MARKET

log = logging.getLogger("tradefleet.workers.bot.market")

INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
    "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
}
"""Kline interval length, ms (Binance intervals the TradingBot spec allows)."""

REST_KLINE_LIMIT = 1500
"""Most klines one ``GET /fapi/v1/klines`` returns (Binance USDⓈ-M limit)."""


def durable_name(namespace: str, bot: str) -> str:
    """``bot_{namespace}_{bot}``: the bot's durable consumer on MARKET."""
    return f"bot_{subjects.check_namespace(namespace)}_{subjects.check_bot(bot)}"


def kline_subjects(spec: TradingBotSpec) -> list[str]:
    """``md.{venue}.{symbol}.kline.{interval}`` of every symbol of the bot."""
    return [subjects.kline(spec.venue, s, spec.interval) for s in spec.symbols]


def feed_subjects(spec: TradingBotSpec) -> list[str]:
    """Every subject the bot consumes: per symbol its klines, funding and mark price."""
    out = []
    for s in spec.symbols:
        out += [subjects.kline(spec.venue, s, spec.interval),
                subjects.market(spec.venue, s, "funding"),
                subjects.market(spec.venue, s, "mark")]
    return out


def bar_from_kline(k: KlineMsg) -> Bar:
    """The strategy's Bar (floats: the strategy layer computes in floats) of a closed kline."""
    return Bar(k.open_time, float(k.open), float(k.high), float(k.low), float(k.close),
               float(k.volume), k.close_time)


def lookback_bars(warmup_bars: int) -> int:
    """Bars to replay before trading: 15 × the strategy's warm-up (EMA/ATR memories agree
    with a long-running instance to ~1e-6, strategies package docs), at least warm-up + 1,
    at most one REST page."""
    return max(warmup_bars + 1, min(15 * warmup_bars, REST_KLINE_LIMIT))


@dataclass
class History:
    """What precedes the consumer's first delivery, oldest first.

    ``bars`` per symbol (at most the look-back), ``funding`` per symbol (all kept in the
    stream, for funding percentiles), ``mark`` the latest mark per symbol, ``upto_seq`` the
    MARKET sequence the history ends at, ``from_rest`` per symbol the bars that came from
    REST because the stream had too few.
    """

    bars: dict[str, list[Bar]] = field(default_factory=dict)
    funding: dict[str, list[FundingMsg]] = field(default_factory=dict)
    mark: dict[str, MarkMsg] = field(default_factory=dict)
    upto_seq: int = 0
    from_rest: dict[str, int] = field(default_factory=dict)


class MarketFeed:
    """The bot's durable consumer on MARKET plus its history reader.

    ``js`` is a nats-py JetStreamContext. Call :meth:`prepare` once (creates or binds the
    consumer and returns the history bound), then :meth:`read_history`, then :meth:`next`
    in a loop; ack each message with :meth:`ack` after processing it.
    """

    def __init__(self, js: Any, spec: TradingBotSpec, namespace: str, bot: str, *,
                 ack_wait_s: float = 30.0) -> None:
        self.js = js
        self.spec = spec
        self.durable = durable_name(namespace, bot)
        self.subjects = feed_subjects(spec)
        self.ack_wait_s = ack_wait_s
        self._sub: Any = None
        self.created = False

    def _config(self, start_seq: int | None) -> api.ConsumerConfig:
        cfg = api.ConsumerConfig(
            name=self.durable, durable_name=self.durable,
            description=f"tradefleet bot {self.durable}: klines, funding, mark",
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s,
            max_ack_pending=1, filter_subjects=list(self.subjects),
            max_waiting=16, replay_policy=api.ReplayPolicy.INSTANT,
        )
        if start_seq is not None:
            cfg.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
            cfg.opt_start_seq = start_seq
        return cfg

    async def prepare(self) -> int:
        """Create the durable (first start) or bind to it (restart); return the MARKET
        sequence the warm-up history ends at (inclusive).

        On a restart with other symbols/interval, the filter subjects are updated and the
        consumer keeps its position. Raises nats errors when MARKET does not exist.
        """
        try:
            info = await self.js.consumer_info(MARKET, self.durable)
        except NotFoundError:
            info = None
        if info is None:
            stream = await self.js.stream_info(MARKET)
            upto = stream.state.last_seq
            await self.js.add_consumer(MARKET, self._config(upto + 1))
            self.created = True
            log.info("market consumer created", extra={
                "consumer": self.durable, "start_seq": upto + 1, "subjects": self.subjects})
        else:
            upto = info.ack_floor.stream_seq if info.ack_floor else 0
            have = sorted(info.config.filter_subjects or
                          ([info.config.filter_subject] if info.config.filter_subject else []))
            if have != sorted(self.subjects) or info.config.ack_wait != self.ack_wait_s \
                    or info.config.max_ack_pending != 1:
                cfg = info.config
                cfg.filter_subjects, cfg.filter_subject = list(self.subjects), None
                cfg.ack_wait, cfg.max_ack_pending = self.ack_wait_s, 1
                await self.js.add_consumer(MARKET, cfg)
                log.info("market consumer updated", extra={
                    "consumer": self.durable, "subjects": self.subjects})
            log.info("market consumer resumed", extra={
                "consumer": self.durable, "ack_floor_stream_seq": upto,
                "num_pending": info.num_pending, "num_ack_pending": info.num_ack_pending})
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=MARKET)
        return upto

    async def read_history(self, upto_seq: int, lookback: int, exchange: Any | None = None,
                           ccxt_symbols: dict[str, str] | None = None) -> History:
        """The bars, funding and last mark up to MARKET sequence ``upto_seq``.

        Keeps the last ``lookback`` bars per symbol; when the stream has fewer, the older
        ones are fetched with ``exchange.fetch_ohlcv`` (ccxt; ``ccxt_symbols`` maps an
        exchange id to its ccxt symbol). Bodies that do not decode are skipped with a
        warning (the live consumer dead-letters them).
        """
        spec = self.spec
        hist = History(upto_seq=upto_seq)
        bars: dict[str, deque[Bar]] = {s: deque(maxlen=lookback) for s in spec.symbols}
        funding: dict[str, list[FundingMsg]] = {s: [] for s in spec.symbols}
        wanted = kline_subjects(spec) + [subjects.market(spec.venue, s, "funding")
                                         for s in spec.symbols]
        if upto_seq > 0:
            async for msg in _replay(self.js, wanted, upto_seq):
                try:
                    body = decode_market(msg.data, msg.subject)
                except codec.DecodeError as exc:
                    log.warning("history message skipped: %s", exc.reason,
                                extra={"subject": msg.subject})
                    continue
                if isinstance(body, KlineMsg):
                    bars[body.symbol].append(bar_from_kline(body))
                elif isinstance(body, FundingMsg):
                    funding[body.symbol].append(body)
            for s in spec.symbols:
                mark = await _last_mark(self.js, subjects.market(spec.venue, s, "mark"), upto_seq)
                if mark is not None:
                    hist.mark[s] = mark
        for s in spec.symbols:
            got = list(bars[s])
            missing = lookback - len(got)
            if missing > 0 and exchange is not None:
                before = got[0].open_time if got else None
                rest = await fetch_rest_bars(exchange, (ccxt_symbols or {}).get(s, s),
                                             spec.interval, missing, before)
                hist.from_rest[s] = len(rest)
                got = rest + got
            hist.bars[s] = got
            hist.funding[s] = funding[s]
        return hist

    async def next(self, timeout_s: float = 1.0) -> Any | None:
        """The next message (nats-py ``Msg``) or None when none came within ``timeout_s``."""
        try:
            [msg] = await self._sub.fetch(1, timeout=timeout_s)
        except TimeoutError:
            return None
        except Exception as exc:  # nats TimeoutError subclasses asyncio's in nats-py 2.x
            if type(exc).__name__ in ("TimeoutError", "FetchTimeoutError"):
                return None
            raise
        return msg

    async def consumer_info(self) -> Any:
        """The durable's ConsumerInfo (ack floor, pending...)."""
        return await self.js.consumer_info(MARKET, self.durable)

    async def close(self) -> None:
        """Unsubscribe; the durable stays (its position is the ack floor)."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - connection already gone
                log.debug("market unsubscribe failed", extra={"error": repr(exc)})
            self._sub = None


async def _replay(js: Any, filter_subjects: list[str], upto_seq: int, batch: int = 512):
    """Messages of ``filter_subjects`` in MARKET with sequence <= ``upto_seq``, in order,
    through an ephemeral no-ack pull consumer."""
    cfg = api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, deliver_policy=api.DeliverPolicy.ALL,
                             filter_subjects=list(filter_subjects), inactive_threshold=30.0,
                             mem_storage=True)
    sub = await js.pull_subscribe(filter_subjects[0], stream=MARKET, config=cfg)
    try:
        info = await sub.consumer_info()
        if not info.num_pending:
            return
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=2.0)
            except Exception as exc:
                if type(exc).__name__ in ("TimeoutError", "FetchTimeoutError"):
                    return
                raise
            for msg in msgs:
                meta = msg.metadata
                if meta.sequence.stream > upto_seq:
                    return
                yield msg
                if meta.sequence.stream == upto_seq or meta.num_pending == 0:
                    return
    finally:
        try:
            await sub.unsubscribe()
        except Exception as exc:  # noqa: BLE001 - an ephemeral consumer expires anyway
            log.debug("history unsubscribe failed", extra={"error": repr(exc)})


async def _last_mark(js: Any, subject: str, upto_seq: int) -> MarkMsg | None:
    try:
        raw = await js.get_last_msg(MARKET, subject)
    except NotFoundError:
        return None
    if raw.seq is not None and raw.seq > upto_seq:
        return None  # newer than the history bound: the consumer delivers it live
    try:
        body = decode_market(raw.data or b"", subject)
    except codec.DecodeError:
        return None
    return body if isinstance(body, MarkMsg) else None


async def fetch_rest_bars(exchange: Any, ccxt_symbol: str, interval: str, count: int,
                          before_open_ms: int | None) -> list[Bar]:
    """Up to ``count`` closed klines ending before ``before_open_ms`` (or the latest closed
    ones when None), oldest first, from ``GET /fapi/v1/klines`` via ccxt ``fetch_ohlcv``.

    ccxt rows are ``[open_time, open, high, low, close, volume]``; the close time is
    ``open_time + interval − 1`` (Binance). Without ``before_open_ms`` the newest row is
    dropped (it may be the forming bar).
    """
    step = INTERVAL_MS[interval]
    count = min(count, REST_KLINE_LIMIT)
    if before_open_ms is not None:
        since = before_open_ms - count * step
        rows = await exchange.fetch_ohlcv(ccxt_symbol, interval, since=since, limit=count)
        rows = [r for r in rows if r[0] + step <= before_open_ms]
    else:
        # The newest row may be the forming bar (Binance; exsim for intervals above 1m),
        # and the venue clock cannot tell (exsim's replay clock is not its /time): drop it.
        # Losing one closed bar of warm-up only nudges the indicators.
        rows = (await exchange.fetch_ohlcv(ccxt_symbol, interval, limit=count + 1))[:-1]
    out = []
    for r in rows[-count:]:
        out.append(Bar.checked(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                               float(r[5]), int(r[0]) + step - 1))
    return out


def sort_history(bars: Iterable[Bar]) -> list[Bar]:
    """Bars by close time without repeats (REST and stream may overlap by a bar)."""
    seen: dict[int, Bar] = {}
    for b in bars:
        seen[b.close_time] = b
    return [seen[t] for t in sorted(seen)]


__all__ = [
    "INTERVAL_MS",
    "History",
    "MarketFeed",
    "bar_from_kline",
    "durable_name",
    "feed_subjects",
    "fetch_rest_bars",
    "kline_subjects",
    "lookback_bars",
    "sort_history",
]
