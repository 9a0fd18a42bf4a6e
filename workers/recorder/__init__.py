"""The recorder: every bar, funding event, order, fill, position, status and risk event on
the bus lands in PostgreSQL / TimescaleDB, batched, idempotent, acked only after commit.

- :mod:`~tradefleet.workers.recorder.schema`: tables, views, migrations (``apply_migrations``)
  and TimescaleDB hypertables/policies.
- :mod:`~tradefleet.workers.recorder.rows`: message -> rows (the owners' message models).
- :mod:`~tradefleet.workers.recorder.tables`: staging tables, COPY and ``INSERT ... ON
  CONFLICT DO NOTHING`` per table.
- :mod:`~tradefleet.workers.recorder.writer`: ``BatchWriter`` (one transaction per batch).
- :mod:`~tradefleet.workers.recorder.queue`: the bounded queue giving backpressure.
- :mod:`~tradefleet.workers.recorder.consumer`: the durable pull consumers.
- :mod:`~tradefleet.workers.recorder.service`: ``Recorder`` (fetch -> write -> ack, DLQ,
  outage handling).
- :mod:`~tradefleet.workers.recorder.runs`: ``record_run_start`` / ``record_run_end``.
"""

from tradefleet.workers.recorder.config import RecorderConfig
from tradefleet.workers.recorder.runs import record_run_end, record_run_start
from tradefleet.workers.recorder.schema import MIGRATIONS, apply_migrations
from tradefleet.workers.recorder.service import Recorder

__all__ = [
    "MIGRATIONS",
    "Recorder",
    "RecorderConfig",
    "apply_migrations",
    "record_run_end",
    "record_run_start",
]
