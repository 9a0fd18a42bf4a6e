"""JetStream streams and KV buckets of tradefleet, and idempotent ``ensure_*`` for them.

=========  ===============  ===========================================================
stream     subjects         holds
=========  ===============  ===========================================================
MARKET     ``md.>``         closed klines, mark price, funding, trades, top of book
FLEET      ``fleet.>``      bot orders, fills, positions, signals, status, heartbeats
                            and commands ``fleet.cmd.{namespace}.{bot}``
RISK       ``risk.events``  risk decisions and halts (``risk.check`` is request/reply
                            and deliberately in no stream: a stream would ack requests)
DLQ        ``dlq.>``        dead letters, ``dlq.{original subject}``
=========  ===============  ===========================================================

Why commands live in FLEET: JetStream refuses streams with overlapping subjects, and any
FLEET filter on ``fleet.*.*.{kind}`` overlaps ``fleet.cmd.>``. Storing them also gives a
restarting bot what it needs: the last command sent to it while it was down
(``js.get_last_msg("FLEET", subjects.command(ns, bot))`` or a consumer with
``DeliverPolicy.LAST_PER_SUBJECT``), instead of a pause lost on core NATS. The recorder
consuming ``fleet.>`` gets an audit trail of commands for free.

All streams use limits retention (discard old): consumers are many and independent
(bot, recorder, operator) and a slow one must not block publishers. Each stream has a
duplicate window for ``Nats-Msg-Id`` de-duplication (NATS docs, "JetStream: Message
Deduplication"); MARKET's is longest because a feed that restarts may backfill klines
several minutes old.

KV buckets: ``risk-state`` (exposure, reservations, halts), ``risk-policy`` (the
RiskPolicy the operator writes), ``locks`` (capital locks per pool, the seeds'
``capital:lock``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from nats.js import api
from nats.js.errors import APIError, NotFoundError
from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

MARKET = "MARKET"
FLEET = "FLEET"
RISK = "RISK"
DLQ = "DLQ"

KV_RISK_STATE = "risk-state"
KV_RISK_POLICY = "risk-policy"
KV_LOCKS = "locks"

HOUR = 3600.0
DAY = 24 * HOUR
MiB = 1024 * 1024
GiB = 1024 * MiB


class StreamLimits(BaseModel):
    """Limits of one stream. Durations in seconds, sizes in bytes, ``-1`` = unlimited.

    ``max_age_s = 0`` keeps messages forever (until ``max_bytes``/``max_msgs``).
    ``duplicate_window_s`` must not exceed ``max_age_s`` (a JetStream rule).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_age_s: float = Field(default=7 * DAY, ge=0, description="Oldest message kept, seconds.")
    max_bytes: int = Field(default=1 * GiB, ge=-1, description="Stream size cap, bytes.")
    max_msgs: int = Field(default=-1, ge=-1, description="Message count cap.")
    duplicate_window_s: float = Field(
        default=120.0, gt=0, description="Nats-Msg-Id dedupe window, s."
    )
    storage: Literal["file", "memory"] = "file"
    replicas: int = Field(default=1, ge=1, le=5, description="JetStream replicas (1 standalone).")

    @model_validator(mode="after")
    def _window_within_age(self) -> StreamLimits:
        if self.max_age_s and self.duplicate_window_s > self.max_age_s:
            raise ValueError(
                f"duplicate_window_s ({self.duplicate_window_s}) must not exceed max_age_s "
                f"({self.max_age_s})"
            )
        return self


class MarketLimits(StreamLimits):
    max_age_s: float = Field(default=3 * DAY, ge=0)
    duplicate_window_s: float = Field(default=10 * 60.0, gt=0)


class FleetLimits(StreamLimits):
    max_age_s: float = Field(default=7 * DAY, ge=0)


class RiskLimits(StreamLimits):
    max_age_s: float = Field(default=30 * DAY, ge=0)
    max_bytes: int = Field(default=256 * MiB, ge=-1)


class DlqLimits(StreamLimits):
    max_age_s: float = Field(default=14 * DAY, ge=0)
    max_bytes: int = Field(default=256 * MiB, ge=-1)


class KVLimits(BaseModel):
    """Limits of one KV bucket. ``history``: values kept per key (1-64); ``ttl_s``: entries
    older than this expire (``None`` = never), seconds; ``max_bytes`` ``-1`` = unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    history: int = Field(default=1, ge=1, le=64)
    ttl_s: float | None = Field(default=None, gt=0)
    max_bytes: int = Field(default=64 * MiB, ge=-1)
    storage: Literal["file", "memory"] = "file"
    replicas: int = Field(default=1, ge=1, le=5)


class BusConfig(BaseModel):
    """Limits for every stream and bucket; load partial overrides from YAML/JSON with
    ``BusConfig.model_validate({"market": {"max_age_s": 86400}})``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    market: MarketLimits = MarketLimits()
    fleet: FleetLimits = FleetLimits()
    risk: RiskLimits = RiskLimits()
    dlq: DlqLimits = DlqLimits()
    risk_state: KVLimits = KVLimits(history=5)
    risk_policy: KVLimits = KVLimits(history=10)
    locks: KVLimits = KVLimits(history=1)


_STREAMS: dict[str, tuple[str, list[str], str]] = {
    # name: (BusConfig field, subjects, description)
    MARKET: ("market", ["md.>"], "Market data: closed klines, mark price, funding, trades, book"),
    FLEET: (
        "fleet",
        ["fleet.>"],
        "Bot orders, fills, positions, signals, status, heartbeats, commands",
    ),
    RISK: ("risk", ["risk.events"], "Risk service decisions and halts"),
    DLQ: ("dlq", ["dlq.>"], "Dead letters: dlq.{original subject}, error in Tf-Dlq-* headers"),
}

_BUCKETS: dict[str, tuple[str, str]] = {
    KV_RISK_STATE: ("risk_state", "Risk service state: exposure, reservations, halts"),
    KV_RISK_POLICY: ("risk_policy", "Active RiskPolicy written by the operator"),
    KV_LOCKS: ("locks", "Capital locks per pool (seed capital:lock)"),
}


class StreamConfigError(RuntimeError):
    """A stream or bucket cannot be brought to the configured shape (names it and why)."""


def stream_configs(config: BusConfig | None = None) -> list[api.StreamConfig]:
    """The nats-py ``StreamConfig`` of every tradefleet stream for ``config``."""
    config = config or BusConfig()
    out = []
    for name, (field, subjects, description) in _STREAMS.items():
        lim: StreamLimits = getattr(config, field)
        out.append(
            api.StreamConfig(
                name=name,
                description=description,
                subjects=list(subjects),
                retention=api.RetentionPolicy.LIMITS,
                discard=api.DiscardPolicy.OLD,
                max_age=lim.max_age_s,
                max_bytes=lim.max_bytes,
                max_msgs=lim.max_msgs,
                duplicate_window=lim.duplicate_window_s,
                storage=api.StorageType(lim.storage),
                num_replicas=lim.replicas,
                allow_direct=True,  # fast get_last_msg (a bot's last command, last status)
            )
        )
    return out


def kv_configs(config: BusConfig | None = None) -> list[api.KeyValueConfig]:
    """The nats-py ``KeyValueConfig`` of every tradefleet KV bucket for ``config``."""
    config = config or BusConfig()
    out = []
    for bucket, (field, description) in _BUCKETS.items():
        lim: KVLimits = getattr(config, field)
        out.append(
            api.KeyValueConfig(
                bucket=bucket,
                description=description,
                history=lim.history,
                ttl=lim.ttl_s,
                max_bytes=lim.max_bytes,
                storage=api.StorageType(lim.storage),
                replicas=lim.replicas,
                direct=True,
            )
        )
    return out


def _same_seconds(a: float | None, b: float | None) -> bool:
    return abs((a or 0.0) - (b or 0.0)) < 1e-6


def _differences(want: api.StreamConfig, have: api.StreamConfig) -> list[str]:
    """Names of managed fields that differ, as ``field: have -> want``."""
    diffs = []
    pairs: list[tuple[str, Any, Any, bool]] = [
        ("subjects", sorted(have.subjects or []), sorted(want.subjects or []), False),
        ("description", have.description, want.description, False),
        ("max_age", have.max_age, want.max_age, True),
        ("duplicate_window", have.duplicate_window, want.duplicate_window, True),
        ("max_bytes", have.max_bytes, want.max_bytes, False),
        ("max_msgs", have.max_msgs, want.max_msgs, False),
        ("max_msgs_per_subject", have.max_msgs_per_subject, want.max_msgs_per_subject, False),
        ("num_replicas", have.num_replicas, want.num_replicas, False),
        ("discard", _value(have.discard), _value(want.discard), False),
        ("allow_direct", bool(have.allow_direct), bool(want.allow_direct), False),
    ]
    for field, h, w, seconds in pairs:
        if (not _same_seconds(h, w)) if seconds else (h != w):
            diffs.append(f"{field}: {h!r} -> {w!r}")
    return diffs


def _value(x: Any) -> Any:
    """nats-py returns enums from the server as plain strings; compare values."""
    return getattr(x, "value", x)


def _immutable_conflicts(want: api.StreamConfig, have: api.StreamConfig) -> list[str]:
    out = []
    if _value(have.storage) != _value(want.storage):
        out.append(f"storage is {_value(have.storage)!r}, configured {_value(want.storage)!r}")
    if _value(have.retention) != _value(want.retention):
        out.append(
            f"retention is {_value(have.retention)!r}, configured {_value(want.retention)!r}"
        )
    return out


async def _ensure_stream(js: Any, want: api.StreamConfig) -> str:
    try:
        info = await js.stream_info(want.name)
    except NotFoundError:
        try:
            await js.add_stream(want)
        except APIError as exc:
            raise StreamConfigError(
                f"cannot create stream {want.name} on {want.subjects}: {exc.description} "
                f"(err_code {exc.err_code}); if another stream already captures these subjects, "
                "delete or narrow it"
            ) from exc
        log.info("stream created", extra={"stream": want.name, "subjects": want.subjects})
        return "created"
    conflicts = _immutable_conflicts(want, info.config)
    if conflicts:
        raise StreamConfigError(
            f"stream {want.name} cannot be updated in place: {'; '.join(conflicts)}. "
            f"Keep the existing setting, or delete stream {want.name} (its messages are lost) "
            "and run again"
        )
    diffs = _differences(want, info.config)
    if not diffs:
        return "unchanged"
    # Start from the server's config so fields we do not manage are kept as they are.
    updated = info.config.evolve(
        subjects=want.subjects,
        description=want.description,
        max_age=want.max_age,
        duplicate_window=want.duplicate_window,
        max_bytes=want.max_bytes,
        max_msgs=want.max_msgs,
        max_msgs_per_subject=want.max_msgs_per_subject,
        num_replicas=want.num_replicas,
        discard=want.discard,
        allow_direct=want.allow_direct,
    )
    try:
        await js.update_stream(updated)
    except APIError as exc:
        raise StreamConfigError(
            f"cannot update stream {want.name} ({'; '.join(diffs)}): {exc.description} "
            f"(err_code {exc.err_code})"
        ) from exc
    log.info("stream updated", extra={"stream": want.name, "changes": diffs})
    return "updated"


async def ensure_streams(js: Any, config: BusConfig | None = None) -> dict[str, str]:
    """Create missing streams and update drifted ones; safe to call on every start.

    ``js`` is a nats-py ``JetStreamContext``. Returns ``{stream name: "created" |
    "updated" | "unchanged"}`` for MARKET, FLEET, RISK and DLQ. Raises
    :class:`StreamConfigError` when a stream cannot be created (e.g. another stream owns
    the subjects) or would need an immutable change (storage, retention).
    """
    return {cfg.name: await _ensure_stream(js, cfg) for cfg in stream_configs(config)}


async def ensure_kv(js: Any, config: BusConfig | None = None) -> dict[str, str]:
    """Create missing KV buckets (risk-state, risk-policy, locks) and update their history,
    TTL and size when the config changed. Returns ``{bucket: "created" | "updated" |
    "unchanged"}``; open a bucket with ``await js.key_value(KV_LOCKS)``.

    Raises :class:`StreamConfigError` on an immutable change (storage) or server refusal.
    """
    actions = {}
    for kv in kv_configs(config):
        stream = f"KV_{kv.bucket}"
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            try:
                await js.create_key_value(kv)
            except APIError as exc:
                raise StreamConfigError(
                    f"cannot create KV bucket {kv.bucket}: {exc.description} "
                    f"(err_code {exc.err_code})"
                ) from exc
            log.info("kv bucket created", extra={"bucket": kv.bucket})
            actions[kv.bucket] = "created"
            continue
        have = info.config
        if _value(have.storage) != _value(kv.storage):
            raise StreamConfigError(
                f"KV bucket {kv.bucket} has storage {_value(have.storage)!r}, configured "
                f"{_value(kv.storage)!r}; storage cannot change in place: delete the bucket "
                "(its keys are lost) or keep the existing storage"
            )
        diffs = []
        if have.max_msgs_per_subject != kv.history:
            diffs.append(f"history: {have.max_msgs_per_subject} -> {kv.history}")
        if not _same_seconds(have.max_age, kv.ttl):
            diffs.append(f"ttl: {have.max_age} -> {kv.ttl}")
        if have.max_bytes != kv.max_bytes:
            diffs.append(f"max_bytes: {have.max_bytes} -> {kv.max_bytes}")
        if have.num_replicas != kv.replicas:
            diffs.append(f"replicas: {have.num_replicas} -> {kv.replicas}")
        if have.description != kv.description:
            diffs.append("description")
        if not diffs:
            actions[kv.bucket] = "unchanged"
            continue
        window = have.duplicate_window
        if kv.ttl and window > kv.ttl:
            window = kv.ttl  # JetStream: duplicate window may not exceed max age
        try:
            await js.update_stream(
                have.evolve(
                    max_msgs_per_subject=kv.history,
                    max_age=kv.ttl or 0,
                    max_bytes=kv.max_bytes,
                    num_replicas=kv.replicas,
                    description=kv.description,
                    duplicate_window=window,
                )
            )
        except APIError as exc:
            raise StreamConfigError(
                f"cannot update KV bucket {kv.bucket} ({'; '.join(diffs)}): {exc.description} "
                f"(err_code {exc.err_code})"
            ) from exc
        log.info("kv bucket updated", extra={"bucket": kv.bucket, "changes": diffs})
        actions[kv.bucket] = "updated"
    return actions
