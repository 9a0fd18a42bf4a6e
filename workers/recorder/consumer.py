"""The recorder's durable JetStream pull consumers, one per stream it records.

==========  ======================  =========================================================
stream      durable                 filter subjects
==========  ======================  =========================================================
MARKET      ``{prefix}-market``     ``md.*.*.kline.*``, ``md.*.*.funding`` (mark price and
                                    book are not recorded; trades have no message model yet)
FLEET       ``{prefix}-fleet``      ``fleet.>`` (orders, fills, positions, signals, status,
                                    heartbeats and commands)
RISK        ``{prefix}-risk``       ``risk.events``
==========  ======================  =========================================================

Durable pull consumers keep the recorder's position in the stream across restarts, and
several recorder replicas bound to the same durables share the work (rows are idempotent).
Acks are explicit and sent only after the rows are committed; ``ack_wait`` is how long an
unacked message stays with this recorder before JetStream redelivers it (the recorder
extends it with ``+WPI`` while it holds messages it cannot write yet). ``max_deliver`` is
unlimited: a message is never dropped by the server; poison goes to ``dlq.>`` instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nats.js import api

from tradefleet.bus import streams, subjects

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """One durable pull consumer: its stream, durable name and filter subjects."""

    stream: str
    durable: str
    filter_subjects: tuple[str, ...]


def consumer_specs(prefix: str = "recorder") -> tuple[ConsumerSpec, ...]:
    """The recorder's consumers on MARKET, FLEET and RISK, named ``{prefix}-market`` etc."""
    return (
        ConsumerSpec(streams.MARKET, f"{prefix}-market",
                     (subjects.md_filter(kind="kline"), subjects.md_filter(kind="funding"))),
        ConsumerSpec(streams.FLEET, f"{prefix}-fleet", (f"{subjects.FLEET}.>",)),
        ConsumerSpec(streams.RISK, f"{prefix}-risk", (subjects.RISK_EVENTS,)),
    )


def consumer_config(spec: ConsumerSpec, *, ack_wait_s: float, max_ack_pending: int
                    ) -> api.ConsumerConfig:
    """The nats-py ``ConsumerConfig`` of ``spec`` (explicit acks, deliver all, never give up)."""
    filters = list(spec.filter_subjects)
    return api.ConsumerConfig(
        name=spec.durable,
        durable_name=spec.durable,
        description=f"tradefleet recorder: {', '.join(filters)} -> PostgreSQL",
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=-1,
        max_ack_pending=max_ack_pending,
        filter_subject=filters[0] if len(filters) == 1 else None,
        filter_subjects=filters if len(filters) > 1 else None,
    )


async def ensure_consumer(js: Any, spec: ConsumerSpec, *, ack_wait_s: float,
                          max_ack_pending: int) -> Any:
    """Create the durable consumer, or update its ack wait, limits and filters (JetStream
    create-or-update, nats-server >= 2.10); return the pull subscription bound to it."""
    config = consumer_config(spec, ack_wait_s=ack_wait_s, max_ack_pending=max_ack_pending)
    info = await js.add_consumer(spec.stream, config)
    log.info("recorder consumer ready", extra={
        "stream": spec.stream, "durable": spec.durable, "filters": list(spec.filter_subjects),
        "pending": info.num_pending, "ack_pending": info.num_ack_pending})
    return await js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
