"""Message bodies on the bus: orjson JSON objects with a schema version ``v``.

Wire format (every subject)::

    {"v": 1, ...fields}

- ``Decimal`` (prices, quantities, USDT amounts) is encoded as a plain decimal string
  (``"0.00000001"``, never an exponent) so no float rounding touches money; consumers
  parse it back with ``Decimal(s)`` or a pydantic ``Decimal`` field.
- Times are integer milliseconds since the Unix epoch, UTC (``open_time``, ``ts``).
- ``Nats-Msg-Id`` makes republishing idempotent: JetStream drops a second message with
  the same id inside the stream's duplicate window (NATS docs, "JetStream: Message
  Deduplication"). Build ids from the message's natural key with :func:`msg_id` /
  :func:`kline_msg_id` so a restarted publisher produces the same id.
- A body that cannot be decoded raises :class:`DecodeError` carrying the raw bytes; the
  consumer hands it to :func:`dead_letter` and acks the original, so one bad message never
  blocks a consumer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from tradefleet.bus import subjects

SCHEMA_VERSION = 1
"""Current body schema version written by :func:`encode`."""

MSG_ID = "Nats-Msg-Id"
"""JetStream de-duplication header."""

# Dead-letter headers: where the message came from and why it was rejected.
DLQ_SUBJECT = "Tf-Dlq-Subject"
DLQ_ERROR = "Tf-Dlq-Error"
DLQ_ERROR_TYPE = "Tf-Dlq-Error-Type"
DLQ_TIME_MS = "Tf-Dlq-Time-Ms"
DLQ_STREAM = "Tf-Dlq-Stream"
DLQ_STREAM_SEQ = "Tf-Dlq-Stream-Seq"

_MAX_HEADER_VALUE = 1024

M = TypeVar("M", bound=BaseModel)


class EncodeError(TypeError):
    """A body could not be encoded (unsupported type, NaN/Infinity Decimal)."""


class DecodeError(ValueError):
    """A payload is not a valid message body.

    Attributes
    ----------
    raw : bytes
        The payload exactly as received, for :func:`dead_letter`.
    subject : str | None
        Subject it arrived on, when known.
    reason : str
        What was wrong, e.g. ``"not JSON: unexpected character"``.
    """

    def __init__(self, reason: str, raw: bytes, subject: str | None = None) -> None:
        self.reason = reason
        self.raw = raw
        self.subject = subject
        where = f" on {subject}" if subject else ""
        super().__init__(f"cannot decode message{where}: {reason}")


class UnsupportedVersion(DecodeError):
    """The body's ``v`` is newer than this code understands (upgrade the consumer)."""


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise EncodeError(f"Decimal {obj} is not a finite amount and cannot be sent")
        return format(obj, "f")
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="python")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise EncodeError(f"cannot encode {type(obj).__name__} {obj!r} as JSON")


def encode(body: Mapping[str, Any] | BaseModel, *, v: int = SCHEMA_VERSION) -> bytes:
    """Encode a message body to JSON bytes, adding ``"v": v`` unless the body has one.

    ``body`` is a mapping or a pydantic model (dumped with ``model_dump()``). Decimals
    become decimal strings, datetimes RFC 3339, enums their value, sets sorted lists.
    Raises :class:`EncodeError` for unsupported values or non-finite Decimals.
    """
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="python")
    if not isinstance(body, Mapping):
        raise EncodeError(
            f"message body must be a mapping or pydantic model, got {type(body).__name__}"
        )
    out = dict(body)
    out.setdefault("v", v)
    try:
        return orjson.dumps(out, default=_default)
    except orjson.JSONEncodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, EncodeError):
            raise cause from None
        raise EncodeError(str(exc)) from None


def decode(
    data: bytes,
    *,
    subject: str | None = None,
    model: type[M] | None = None,
    max_version: int = SCHEMA_VERSION,
) -> dict[str, Any] | M:
    """Decode a message body; return the dict, or a ``model`` instance when given.

    Raises :class:`DecodeError` (with ``raw=data``) when the payload is not JSON, not an
    object, has no integer ``v`` >= 1, or does not validate against ``model`` (the pydantic
    error, naming the field, becomes the reason); :class:`UnsupportedVersion` when ``v`` is
    greater than ``max_version``.
    """
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}", bytes(data), subject) from None
    if not isinstance(body, dict):
        raise DecodeError(
            f"body must be a JSON object, got {type(body).__name__}", bytes(data), subject
        )
    v = body.get("v")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise DecodeError(
            f"field 'v' (schema version) must be an integer >= 1, got {v!r}", bytes(data), subject
        )
    if v > max_version:
        raise UnsupportedVersion(
            f"schema version v={v} is newer than supported v<={max_version}; upgrade this consumer",
            bytes(data),
            subject,
        )
    if model is None:
        return body
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise DecodeError(f"invalid {model.__name__}: {problems}", bytes(data), subject) from None


# -- message ids ---------------------------------------------------------------------------


def msg_id(*parts: str | int) -> str:
    """Deterministic ``Nats-Msg-Id`` from a message's natural key, joined by ``:``.

    Parts are strings or integers (ms timestamps, sequence numbers); a part may not be
    empty or contain ``:`` or whitespace. Raises ``ValueError`` naming the part.
    """
    if not parts:
        raise ValueError("msg_id needs at least one part")
    out = []
    for i, part in enumerate(parts):
        if isinstance(part, bool) or not isinstance(part, (str, int)):
            raise ValueError(
                f"msg_id part {i} must be str or int, got {type(part).__name__} {part!r}"
            )
        text = str(part)
        if not text or ":" in text or any(c.isspace() for c in text):
            raise ValueError(
                f"msg_id part {i} {text!r} must be non-empty without ':' or whitespace"
            )
        out.append(text)
    return ":".join(out)


def kline_msg_id(venue: str, symbol: str, interval: str, open_time_ms: int) -> str:
    """``{venue}:{symbol}:{interval}:{open_time_ms}``: one id per closed kline.

    A market-data feed that reconnects and republishes the last closed kline sends the same
    id, so JetStream stores it once (within the MARKET duplicate window).
    """
    subjects.check_venue(venue)
    subjects.check_symbol(symbol)
    subjects.check_interval(interval)
    if isinstance(open_time_ms, bool) or not isinstance(open_time_ms, int) or open_time_ms < 0:
        raise ValueError(
            f"open_time_ms must be a non-negative integer (ms since epoch), got {open_time_ms!r}"
        )
    return msg_id(venue, symbol, interval, open_time_ms)


# -- dead letters --------------------------------------------------------------------------


def _header_value(text: str) -> str:
    # NATS headers are MIME-style: one line each. Keep errors readable but bounded.
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_HEADER_VALUE else flat[: _MAX_HEADER_VALUE - 3] + "..."


def dead_letter_headers(
    subject: str, error: BaseException | str, headers: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Headers for a dead letter: the original ones (minus JetStream control headers other
    than ``Nats-Msg-Id``) plus ``Tf-Dlq-Subject``, ``Tf-Dlq-Error``, ``Tf-Dlq-Error-Type``
    and ``Tf-Dlq-Time-Ms`` (UTC ms)."""
    out = {
        k: v
        for k, v in (headers or {}).items()
        if not k.lower().startswith("nats-") or k.lower() == MSG_ID.lower()
    }
    if isinstance(error, DecodeError):
        reason, kind = error.reason, type(error).__name__
    elif isinstance(error, BaseException):
        reason, kind = str(error) or repr(error), type(error).__name__
    else:
        reason, kind = str(error), "str"
    out[DLQ_SUBJECT] = subject
    out[DLQ_ERROR] = _header_value(reason)
    out[DLQ_ERROR_TYPE] = kind
    out[DLQ_TIME_MS] = str(time.time_ns() // 1_000_000)
    return out


async def dead_letter(
    js: Any,
    subject: str,
    payload: bytes,
    error: BaseException | str,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
) -> Any:
    """Publish an unprocessable message to ``dlq.{subject}`` (stream DLQ); return the PubAck.

    ``js`` is a nats-py JetStreamContext. The payload is kept byte for byte; the original
    ``Nats-Msg-Id`` is kept, so dead-lettering the same redelivered message twice stores it
    once. Ack (or term) the original only after this returns: if it raises (no DLQ stream,
    NATS down) the message stays unacked and is redelivered.
    """
    return await js.publish(
        subjects.dlq(subject),
        bytes(payload),
        headers=dead_letter_headers(subject, error, headers),
        timeout=timeout,
    )


async def dead_letter_msg(
    js: Any, msg: Any, error: BaseException | str, *, timeout: float | None = None
) -> Any:
    """:func:`dead_letter` for a received JetStream ``Msg``; adds the source stream and
    stream sequence (``Tf-Dlq-Stream``, ``Tf-Dlq-Stream-Seq``) so it can be traced back."""
    headers = dict(msg.headers or {})
    try:
        meta = msg.metadata
        headers[DLQ_STREAM] = str(meta.stream)
        headers[DLQ_STREAM_SEQ] = str(meta.sequence.stream)
    except Exception:  # core NATS message: no JetStream metadata to add
        pass
    return await dead_letter(js, msg.subject, msg.data, error, headers, timeout=timeout)
