"""Market-data feed: one WebSocket per venue → JetStream ``md.{venue}.{symbol}.*``.

Use::

    from tradefleet.workers.marketdata import Feed, FeedConfig

    feed = Feed(FeedConfig(venue="binanceusdm", ws_url="wss://fstream.binance.com",
                           rest_url="https://fapi.binance.com", symbols=["BTCUSDT", "ETHUSDT"],
                           intervals=["1m"], nats_url="nats://127.0.0.1:4222", metrics_port=9002))
    task = asyncio.create_task(feed.run())
    ...
    await feed.stop()

or ``tradefleet marketdata --venue exsim --ws-url ws://127.0.0.1:9010 --rest-url
http://127.0.0.1:9010 --symbols BTCUSDT,ETHUSDT``. Message bodies are the models of
:mod:`tradefleet.bus.market_messages`; see :mod:`.feed` for the data path, ordering,
back-fill and funding rules, :mod:`.metrics` for ``/metrics``.
"""

from .config import Backoff, FeedConfig, StreamKind
from .feed import Feed, next_open_time

__all__ = ["Backoff", "Feed", "FeedConfig", "StreamKind", "next_open_time"]
