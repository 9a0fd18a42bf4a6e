"""The ``runs`` table: one row per local run (``tradefleet run``), written by the runner.

``record_run_start`` inserts the run with its configuration when the run starts;
``record_run_end`` sets its end time and report. Both apply the schema migrations first
(idempotent), so the runner may write before any recorder started. JSON documents keep
``Decimal`` as decimal strings, like the bus.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from tradefleet.workers.recorder.schema import apply_migrations

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def _check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ValueError(f"run_id {run_id!r} must be 1-128 characters: letters, digits, "
                         "'_', '.', ':', '-' (starting with a letter or digit)")
    return run_id


def _document(name: str, value: object) -> str:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping (a JSON object), got {type(value).__name__}")

    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            if not o.is_finite():
                raise TypeError(f"Decimal {o} is not finite")
            return format(o, "f")
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        if isinstance(o, float):  # float subclasses, e.g. numpy.float64 from the stats
            return float(o)
        if hasattr(o, "item") and callable(o.item):  # other numpy scalars
            return o.item()
        if hasattr(o, "isoformat"):  # pandas Timestamp and the like
            return o.isoformat()
        raise TypeError(f"{type(o).__name__} {o!r}")

    try:
        return orjson.dumps(value, default=default,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ValueError(f"{name} cannot be stored as JSON: {exc}") from None


def _check_ms(name: str, ms: object) -> int:
    if ms is None:
        return time.time_ns() // 1_000_000
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
        raise ValueError(f"{name} must be UTC milliseconds since the epoch (int >= 0), got {ms!r}")
    return ms


async def record_run_start(conn: psycopg.AsyncConnection[Any], run_id: str,
                           config: Mapping[str, Any], *, started_ms: int | None = None) -> None:
    """Insert run ``run_id`` with its ``config`` (a JSON object) started at ``started_ms``
    (UTC ms, default now).

    ``conn`` is an async psycopg connection outside a transaction; the row is committed on
    return. Raises ``ValueError`` (nothing written) for a bad run id, a config that is not a
    JSON object, or a run id that already exists.
    """
    _check_run_id(run_id)
    doc = _document("config", config)
    started = _check_ms("started_ms", started_ms)
    await apply_migrations(conn)
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO runs (run_id, started_at, config) "
            "VALUES (%s, ms_to_timestamptz(%s), %s::jsonb) ON CONFLICT (run_id) DO NOTHING",
            (run_id, started, doc))
        if cur.rowcount != 1:
            raise ValueError(f"run_id {run_id!r} already exists in table runs; use a new id "
                             "for a new run")


async def record_run_end(conn: psycopg.AsyncConnection[Any], run_id: str,
                         report: Mapping[str, Any], *, ended_ms: int | None = None) -> None:
    """Set the end time (UTC ms, default now) and ``report`` (a JSON object: figures,
    per-bot results) of run ``run_id``; calling it again replaces both.

    Raises ``ValueError`` (nothing written) for a bad run id or report, or a run that was
    never started (call :func:`record_run_start` first).
    """
    _check_run_id(run_id)
    doc = _document("report", report)
    ended = _check_ms("ended_ms", ended_ms)
    await apply_migrations(conn)
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE runs SET ended_at = ms_to_timestamptz(%s), report = %s::jsonb "
            "WHERE run_id = %s", (ended, doc, run_id))
        if cur.rowcount != 1:
            raise ValueError(f"run_id {run_id!r} not found in table runs; call "
                             "record_run_start first")
