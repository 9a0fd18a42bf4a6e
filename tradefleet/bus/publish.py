"""Publish one message body to JetStream the tradefleet way.

Encodes with :mod:`tradefleet.bus.codec` (``v``, Decimal as string), sets ``Nats-Msg-Id``
for de-duplication, and adds the current span's W3C trace context so consumers continue
the trace. Every component publishes through here, so these three never diverge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from tradefleet.bus.codec import MSG_ID, encode
from tradefleet.telemetry.tracing import inject_headers


async def publish(
    js: Any,
    subject: str,
    body: Mapping[str, Any] | BaseModel,
    *,
    msg_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    """Encode ``body`` and publish it on ``subject``; return the JetStream ``PubAck``.

    ``PubAck.duplicate`` is true when JetStream dropped it as a repeat of ``msg_id``
    within the stream's duplicate window. Raises :class:`~tradefleet.bus.codec.EncodeError`
    for a body that cannot be encoded, ``nats.js.errors.NoStreamResponseError`` when no
    stream captures ``subject`` (run ``ensure_streams``), ``nats.errors.TimeoutError``
    when JetStream does not ack within ``timeout`` seconds.
    """
    data = encode(body)
    out = inject_headers(headers)
    if msg_id is not None:
        out[MSG_ID] = msg_id
    return await js.publish(subject, data, headers=out or None, timeout=timeout)
