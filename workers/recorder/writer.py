"""Batched, idempotent writes to PostgreSQL: one transaction per batch.

:class:`BatchWriter` owns one async psycopg connection. :meth:`BatchWriter.write` COPYs
each table's rows into its session staging table and moves them with ``INSERT ... SELECT
... ON CONFLICT DO NOTHING`` (see :mod:`tradefleet.workers.recorder.tables`), all in one
transaction: after it returns, every row of the batch is committed (new, or already there
from an earlier delivery); if it raises, none is.

Errors are sorted for the caller by :func:`is_poison`: a data error (SQLSTATE class 22,
e.g. a time out of the ``timestamptz`` range) or an integrity error (class 23) is caused by
some row, so the batch is split to find the message; anything else (connection lost, server
shutting down, a missing table) is the database's state, so the batch is kept and retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from tradefleet.workers.recorder.schema import apply_migrations
from tradefleet.workers.recorder.tables import TABLES

log = logging.getLogger(__name__)


def safe_dsn(url: str) -> str:
    """``user@host:port/dbname`` of a connection string, without the password (for logs)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable database url>"
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = parts.get("port") or "5432"
    user = parts.get("user") or ""
    return f"{user + '@' if user else ''}{host}:{port}/{parts.get('dbname') or ''}"


def is_poison(exc: BaseException) -> bool:
    """True when ``exc`` was caused by the rows written (data or integrity error), so the
    message behind them must be found and dead-lettered; False for the database's state
    (connection, shutdown, schema), where the batch is retried unchanged."""
    return isinstance(exc, (psycopg.errors.DataError, psycopg.errors.IntegrityError))


class BatchWriter:
    """Writes batches of rows (grouped by table) in one transaction each.

    Parameters
    ----------
    url : str
        libpq connection string or ``postgresql://`` URL (password never logged).
    connect_timeout_s : float
        TCP connect timeout per attempt, seconds.
    migrate : bool
        Apply :func:`~tradefleet.workers.recorder.schema.apply_migrations` on connect.
    """

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0, migrate: bool = True):
        if not url:
            raise ValueError("database url is empty: pass --database-url or set DATABASE_URL")
        self.url = url
        self.where = safe_dsn(url)
        self.connect_timeout_s = connect_timeout_s
        self.migrate = migrate
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def connect(self) -> None:
        """Connect, migrate (once per process is enough, but it is cheap and safe), create
        the session's staging tables. Raises ``psycopg.OperationalError`` when the server
        is unreachable."""
        await self.close()
        conn = await psycopg.AsyncConnection.connect(
            self.url, connect_timeout=max(1, int(self.connect_timeout_s)),
            application_name="tradefleet-recorder",
        )
        try:
            if self.migrate:
                await apply_migrations(conn)
            async with conn.transaction():
                for spec in TABLES.values():
                    await conn.execute(spec.create_stage_sql())
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        log.info("connected to PostgreSQL", extra={"database": self.where})

    async def recover(self) -> None:
        """After a failed write: keep a healthy session (a deadlock or serialization error
        only rolled back the transaction), close a broken one so the next write reconnects."""
        conn = self._conn
        if conn is None:
            return
        if conn.closed or conn.broken:
            await self.close()
            return
        try:
            await conn.rollback()
        except psycopg.Error:
            await self.close()

    async def close(self) -> None:
        """Close the connection (an open transaction rolls back). Safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    async def write(self, rows: Mapping[str, Sequence[tuple[Any, ...]]]) -> dict[str, int]:
        """Write every table's rows in one transaction; return rows inserted per table
        (rows already stored, e.g. redeliveries, are skipped and not counted).

        Raises ``psycopg.Error`` (the transaction is rolled back): classify with
        :func:`is_poison`. Raises ``psycopg.OperationalError`` when not connected.
        """
        conn = self._conn
        if conn is None or conn.closed:
            raise psycopg.OperationalError(f"not connected to PostgreSQL at {self.where}")
        inserted: dict[str, int] = {}
        async with conn.transaction():
            async with conn.cursor() as cur:
                for table, table_rows in rows.items():
                    if not table_rows:
                        continue
                    spec = TABLES[table]
                    async with cur.copy(spec.copy_sql()) as copy:
                        for row in table_rows:
                            await copy.write_row(row)
                    await cur.execute(spec.insert_sql())
                    inserted[table] = max(cur.rowcount, 0)
        return inserted

    async def ping(self) -> float:
        """Round trip of ``SELECT 1`` in seconds (raises when the database is down)."""
        conn = self._conn
        if conn is None or conn.closed:
            raise psycopg.OperationalError(f"not connected to PostgreSQL at {self.where}")
        t0 = time.perf_counter()
        await conn.execute("SELECT 1")
        await conn.rollback()
        return time.perf_counter() - t0
