"""Prometheus metrics of the recorder (``/metrics``).

=======================================  =========  ============================================
metric                                   type       labels / meaning
=======================================  =========  ============================================
recorder_messages_total                  counter    ``stream``: messages fetched from JetStream
recorder_rows_written_total              counter    ``table``: rows inserted (committed)
recorder_rows_duplicate_total            counter    ``table``: rows already stored (redelivery)
recorder_batches_total                   counter    ``outcome``: committed, failed (db error,
                                                    retried), split (a row was refused)
recorder_batch_seconds                   histogram  one batch transaction (COPY + INSERT +
                                                    commit), seconds
recorder_batch_messages                  histogram  messages per committed batch
recorder_dead_letters_total              counter    ``stream``, ``reason`` decode|database:
                                                    messages published to ``dlq.>``
recorder_queue_depth                     gauge      messages held (fetched, not yet acked)
recorder_queue_capacity                  gauge      most messages held at once
recorder_consumer_pending                gauge      ``stream``: messages in the stream not yet
                                                    delivered to the recorder (lag in messages)
recorder_lag_seconds                     gauge      ``stream``: now minus the stream time of the
                                                    last committed message
recorder_db_up                           gauge      1 while PostgreSQL accepts writes
recorder_db_reconnects_total             counter    reconnect attempts after a failure
ingest_rate                              gauge      rows/s committed over the last batches
                                                    (seed metric name)
=======================================  =========  ============================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000)


class RecorderMetrics:
    """The recorder's metrics registered on ``registry`` (one registry per component)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter("recorder_messages_total", "Messages fetched from JetStream",
                                ["stream"], registry=registry)
        self.rows = Counter("recorder_rows_written_total", "Rows inserted and committed",
                            ["table"], registry=registry)
        self.duplicates = Counter("recorder_rows_duplicate_total",
                                  "Rows skipped because already stored (redeliveries)",
                                  ["table"], registry=registry)
        self.batches = Counter("recorder_batches_total", "Batch transactions by outcome",
                               ["outcome"], registry=registry)
        self.batch_seconds = Histogram("recorder_batch_seconds",
                                       "One batch transaction, COPY to commit, seconds",
                                       buckets=BATCH_BUCKETS, registry=registry)
        self.batch_messages = Histogram("recorder_batch_messages", "Messages per committed batch",
                                        buckets=SIZE_BUCKETS, registry=registry)
        self.dead_letters = Counter("recorder_dead_letters_total",
                                    "Messages dead-lettered to dlq.>", ["stream", "reason"],
                                    registry=registry)
        self.queue_depth = Gauge("recorder_queue_depth", "Messages held (fetched, not acked)",
                                 registry=registry)
        self.queue_capacity = Gauge("recorder_queue_capacity", "Most messages held at once",
                                    registry=registry)
        self.pending = Gauge("recorder_consumer_pending",
                             "Messages in the stream not yet delivered to the recorder",
                             ["stream"], registry=registry)
        self.lag = Gauge("recorder_lag_seconds",
                         "Now minus the stream time of the last committed message, seconds",
                         ["stream"], registry=registry)
        self.db_up = Gauge("recorder_db_up", "1 while PostgreSQL accepts writes",
                           registry=registry)
        self.reconnects = Counter("recorder_db_reconnects_total",
                                  "PostgreSQL reconnect attempts after a failure",
                                  registry=registry)
        self.ingest_rate = Gauge("ingest_rate", "Rows per second committed (last batches)",
                                 ["component"], registry=registry)
