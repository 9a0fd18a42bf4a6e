"""The bus: NATS subjects, JetStream streams and KV, message codec, connection.

- :mod:`tradefleet.bus.subjects`: build/parse ``md.*``, ``fleet.*``, ``risk.*``, ``dlq.*``.
- :mod:`tradefleet.bus.streams`: MARKET, FLEET, RISK, DLQ streams and KV buckets,
  ``ensure_streams`` / ``ensure_kv``.
- :mod:`tradefleet.bus.codec`: JSON bodies with ``v``, ``Nats-Msg-Id`` builders,
  ``DecodeError`` and ``dead_letter``.
- :mod:`tradefleet.bus.publish`: ``publish`` (encode + msg id + trace context).
- :mod:`tradefleet.bus.connect`: ``connect`` with reconnect settings and logging.
"""

from tradefleet.bus import codec, streams, subjects
from tradefleet.bus.codec import DecodeError, dead_letter, dead_letter_msg, decode, encode
from tradefleet.bus.connect import connect
from tradefleet.bus.publish import publish
from tradefleet.bus.streams import BusConfig, ensure_kv, ensure_streams

__all__ = [
    "BusConfig",
    "DecodeError",
    "codec",
    "connect",
    "dead_letter",
    "dead_letter_msg",
    "decode",
    "encode",
    "ensure_kv",
    "ensure_streams",
    "publish",
    "streams",
    "subjects",
]
