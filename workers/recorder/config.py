"""Settings of one recorder process (``tradefleet recorder`` flags)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradefleet.bus.streams import BusConfig


class RecorderConfig(BaseModel):
    """What the recorder connects to and how it batches.

    Units: ``flush_ms`` in ms, every ``*_s`` in seconds, sizes in messages. A bad value
    raises ``pydantic.ValidationError`` naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    nats_url: str | None = Field(default=None, description="nats://host:port; default NATS_URL")
    database_url: str | None = Field(default=None, description="PostgreSQL URL; default "
                                     "DATABASE_URL")
    metrics_port: int = Field(default=9109, ge=0, le=65535, description="/metrics, /healthz "
                              "and /readyz port (0 = any free port)")
    metrics_host: str = "0.0.0.0"
    batch_size: int = Field(default=5000, ge=1, le=100_000, description="Most messages per "
                            "database transaction.")
    flush_ms: int = Field(default=100, ge=0, le=60_000, description="How long a partial batch "
                          "waits for more messages before it is written, ms.")
    queue_capacity: int | None = Field(default=None, ge=1, le=1_000_000, description="Most "
                                       "messages held unacked (default 4 x batch_size).")
    fetch_max: int | None = Field(default=None, ge=1, le=100_000, description="Most messages "
                                  "per JetStream pull request (default min(batch_size, "
                                  "capacity / 4)).")
    ack_wait_s: float = Field(default=60.0, ge=1.0, le=3600.0, description="JetStream ack wait "
                              "of the recorder's consumers; held messages are kept alive "
                              "with in-progress acks every ack_wait_s / 3.")
    durable_prefix: str = Field(default="recorder", pattern=r"^[A-Za-z0-9_-]{1,48}$",
                                description="Durable consumer names: {prefix}-market, "
                                "{prefix}-fleet, {prefix}-risk.")
    backoff_min_s: float = Field(default=0.5, gt=0, le=60)
    backoff_max_s: float = Field(default=10.0, gt=0, le=300)
    fetch_timeout_s: float = Field(default=1.0, gt=0, le=30, description="Longest wait of one "
                                   "pull request on an idle stream.")
    bus: BusConfig = Field(default_factory=BusConfig, description="Stream limits for "
                           "ensure_streams (the same the other components use).")
    stop_grace_s: float = Field(default=15.0, ge=0, le=600, description="On stop, how long "
                                "to keep trying to commit held messages before leaving them "
                                "to redelivery.")

    @model_validator(mode="after")
    def _check(self) -> RecorderConfig:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError(f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_min_s "
                             f"({self.backoff_min_s})")
        if self.queue_capacity is not None and self.queue_capacity < self.batch_size:
            raise ValueError(f"queue_capacity ({self.queue_capacity}) must be >= batch_size "
                             f"({self.batch_size}): a batch is taken from the queue")
        return self

    @property
    def capacity(self) -> int:
        """Messages held at most (queued + being written)."""
        return self.queue_capacity or 4 * self.batch_size

    @property
    def fetch_batch(self) -> int:
        """Messages asked per pull request."""
        return self.fetch_max or max(1, min(self.batch_size, self.capacity // 4))

    def resolved_database_url(self) -> str:
        """``database_url`` or ``DATABASE_URL``; ``ValueError`` saying what to set when both
        are missing."""
        url = self.database_url or os.environ.get("DATABASE_URL")
        if not url:
            raise ValueError("database_url: no PostgreSQL URL; pass --database-url or set "
                             "DATABASE_URL (e.g. postgresql://user@host:5432/tradefleet)")
        return url
