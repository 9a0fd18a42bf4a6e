"""Bar rows/s into PostgreSQL: the recorder path (JetStream -> Recorder -> commit) and the
raw write path alone (BatchWriter: COPY + INSERT ... ON CONFLICT DO NOTHING).

Starts an embedded nats-server (JetStream, file storage) and an embedded PostgreSQL (a
temporary cluster: ``fsync=off``, ``synchronous_commit=off``; pass ``--durable`` for a
cluster with the defaults, fsync on), then:

1. raw write path: ``--klines`` bar rows (KlineMsg bodies, decoded once up front) written
   by :class:`BatchWriter` in batches of ``--batch-size``, one transaction each.
2. publish: the same klines, as KlineMsg bodies with their ``Nats-Msg-Id``, to stream
   MARKET over ``--symbols`` symbols (publish rate reported, not part of the figure).
3. recorder path: a :class:`Recorder` (in this process, on uvloop as ``tradefleet
   recorder`` runs) starts on the filled stream; the clock runs from its first fetched
   message to the commit of the last row. Every message goes through the real path:
   fetch, decode with the owners' model, COPY, INSERT, commit, ack.

CPU time per row of each process (this one = the recorder, nats-server, PostgreSQL) is
reported because the machine may be shared: ``1e6 / recorder_cpu_us_per_row`` is the rate
one recorder sustains on a core of its own. Target (issue): >= 50,000 bar rows/s.

Usage: ``.venv/bin/python bench/recorder.py [--klines 50000] [--batch-size 5000]
[--flush-ms 100] [--symbols 10] [--durable] [--repeat 3]`` (the raw path runs ``--repeat``
times; the median is reported). Writes ``bench/results/recorder.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psutil
import uvloop

from tradefleet.bus import codec, subjects
from tradefleet.bus.connect import connect
from tradefleet.bus.market_messages import KlineMsg
from tradefleet.bus.streams import ensure_streams
from tradefleet.embedded import EmbeddedNats, EmbeddedPostgres
from tradefleet.workers.recorder import Recorder, RecorderConfig
from tradefleet.workers.recorder.rows import records
from tradefleet.workers.recorder.writer import BatchWriter

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "recorder.json"
T0 = 1746403200000
MINUTE = 60_000


def kline_bodies(n: int, n_symbols: int) -> list[dict]:
    """``n`` 1m kline bodies spread over ``n_symbols`` symbols, realistic price strings."""
    symbols = [f"SYM{i:03d}USDT" for i in range(n_symbols)]
    out = []
    for i in range(n):
        sym = symbols[i % n_symbols]
        k = i // n_symbols
        base = Decimal(94000) + Decimal(k % 500) / 10
        open_time = T0 + k * MINUTE
        out.append({"venue": "exsim", "symbol": sym, "interval": "1m", "open_time": open_time,
                    "close_time": open_time + MINUTE - 1, "open": str(base),
                    "high": str(base + Decimal("12.3")), "low": str(base - Decimal("8.7")),
                    "close": str(base + Decimal("1.1")), "volume": "123.456",
                    "quote_volume": "11634567.12", "trades": 1234, "taker_buy_volume": "60.1",
                    "taker_buy_quote_volume": "5660000.1", "event_time": open_time + MINUTE})
    return out


class _Wire:
    """A message as the recorder sees it (subject + bytes), for the decode-only figure."""

    __slots__ = ("subject", "data", "headers")

    def __init__(self, subject: str, data: bytes) -> None:
        self.subject, self.data, self.headers = subject, data, None

    @property
    def metadata(self):  # noqa: D401 - not needed for klines
        raise AttributeError


def cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def pg_cpu(pg: EmbeddedPostgres) -> dict[int, float]:
    """CPU seconds per PostgreSQL process (postmaster and every backend) now."""
    root = psutil.Process(pg.pid)
    out = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def pg_cpu_since(pg: EmbeddedPostgres, before: dict[int, float]) -> float:
    """PostgreSQL CPU seconds since ``before`` (backends started meanwhile count from 0)."""
    return sum(v - before.get(pid, 0.0) for pid, v in pg_cpu(pg).items())


async def raw_write(pg: EmbeddedPostgres, bodies: list[dict], batch_size: int) -> dict:
    msgs = [KlineMsg.model_validate(b) for b in bodies]
    table_rows = [(m.venue, m.symbol, m.interval, m.open_time, m.close_time, m.open, m.high,
                   m.low, m.close, m.volume, m.quote_volume, m.trades, m.taker_buy_volume,
                   m.taker_buy_quote_volume, m.event_time, m.source) for m in msgs]
    writer = BatchWriter(pg.url)
    await writer.connect()
    me = psutil.Process()
    pg0 = pg_cpu(pg)
    c0, t0 = me.cpu_times(), time.perf_counter()
    for start in range(0, len(table_rows), batch_size):
        await writer.write({"bars": table_rows[start:start + batch_size]})
    seconds = time.perf_counter() - t0
    c1 = me.cpu_times()
    pg_s = pg_cpu_since(pg, pg0)
    await writer.ping()
    conn = writer._conn
    cur = await conn.execute("SELECT count(*) FROM bars")
    stored = (await cur.fetchone())[0]
    await conn.execute("TRUNCATE bars")
    await conn.commit()
    await writer.close()
    return {"rows": stored, "seconds": round(seconds, 3),
            "rows_per_s": round(stored / seconds),
            "writer_cpu_us_per_row": round(((c1.user + c1.system) - (c0.user + c0.system))
                                           / stored * 1e6, 1),
            "postgres_cpu_us_per_row": round(pg_s / stored * 1e6, 1)}


async def publish_all(js, bodies: list[dict]) -> dict:
    t0 = time.perf_counter()
    chunk = 1000
    for start in range(0, len(bodies), chunk):
        await asyncio.gather(*(
            js.publish(subjects.kline(b["venue"], b["symbol"], b["interval"]), codec.encode(b),
                       headers={codec.MSG_ID: codec.kline_msg_id(b["venue"], b["symbol"],
                                                                 b["interval"], b["open_time"])})
            for b in bodies[start:start + chunk]))
    seconds = time.perf_counter() - t0
    return {"messages": len(bodies), "seconds": round(seconds, 3),
            "messages_per_s": round(len(bodies) / seconds)}


def decode_only(bodies: list[dict]) -> dict:
    wires = [_Wire(subjects.kline(b["venue"], b["symbol"], b["interval"]), codec.encode(b))
             for b in bodies[:20000]]
    t0 = time.process_time()  # CPU time: robust on a shared machine
    for w in wires:
        records(w)
    seconds = time.process_time() - t0
    return {"messages": len(wires), "cpu_us_per_message": round(seconds / len(wires) * 1e6, 2)}


async def recorder_path(nats_url: str, pg: EmbeddedPostgres, n: int, batch_size: int,
                        flush_ms: int, nats_proc: psutil.Process) -> dict:
    config = RecorderConfig(nats_url=nats_url, database_url=pg.url, metrics_port=0,
                            batch_size=batch_size, flush_ms=flush_ms)
    rec = Recorder(config)
    me = psutil.Process()
    task = asyncio.create_task(rec.run())
    sample = rec.registry.get_sample_value
    while not (sample("recorder_messages_total", {"stream": "MARKET"}) or 0):
        if task.done():
            task.result()
        await asyncio.sleep(0.001)
    t_first = time.perf_counter()
    cpu0 = (me.cpu_times(), cpu_s([nats_proc]), pg_cpu(pg))
    while (sample("recorder_rows_written_total", {"table": "bars"}) or 0) < n:
        if task.done():
            task.result()
        await asyncio.sleep(0.002)
    seconds = time.perf_counter() - t_first
    mine = me.cpu_times()
    cpu = ((mine.user + mine.system) - (cpu0[0].user + cpu0[0].system),
           cpu_s([nats_proc]) - cpu0[1], pg_cpu_since(pg, cpu0[2]))
    batches = sample("recorder_batches_total", {"outcome": "committed"}) or 0
    batch_sum = sample("recorder_batch_seconds_sum") or 0
    await rec.stop()
    await task
    return {
        "rows": n, "seconds": round(seconds, 3), "rows_per_s": round(n / seconds),
        "batches": int(batches),
        "mean_batch_ms": round(batch_sum / batches * 1000, 2) if batches else None,
        "db_time_share": round(batch_sum / seconds, 3),
        "recorder_cpu_us_per_row": round(cpu[0] / n * 1e6, 1),
        "nats_server_cpu_us_per_row": round(cpu[1] / n * 1e6, 1),
        "postgres_cpu_us_per_row": round(cpu[2] / n * 1e6, 1),
        "recorder_rows_per_cpu_s": round(n / cpu[0]) if cpu[0] else None,
    }


async def main(args: argparse.Namespace) -> dict:
    bodies = kline_bodies(args.klines, args.symbols)
    data_dir = Path(tempfile.mkdtemp(prefix="tf-bench-pg-")) if args.durable else None
    if data_dir is not None:
        os.chmod(data_dir, 0o755)
    nats = EmbeddedNats().start()
    pg = EmbeddedPostgres(data_dir=data_dir / "data" if data_dir else None).start()
    try:
        nc = await connect(nats.url, name="bench-recorder")
        js = nc.jetstream(timeout=30)
        await ensure_streams(js)
        runs = [await raw_write(pg, bodies, args.batch_size) for _ in range(args.repeat)]
        raw = dict(sorted(runs, key=lambda r: r["rows_per_s"])[len(runs) // 2])  # median
        raw["runs_rows_per_s"] = [r["rows_per_s"] for r in runs]
        print(f"raw write path: {raw['rows_per_s']:>8,} rows/s median of {raw['runs_rows_per_s']} "
              f"({raw['rows']:,} rows in {raw['seconds']} s, batch {args.batch_size}; cpu us/row "
              f"writer {raw['writer_cpu_us_per_row']}, postgres {raw['postgres_cpu_us_per_row']})")
        dec = decode_only(bodies)
        print(f"decode (KlineMsg via rows.records): {dec['cpu_us_per_message']} cpu us/message")
        pub = await publish_all(js, bodies)
        print(f"published {pub['messages']:,} klines at {pub['messages_per_s']:,}/s")
        await nc.drain()
        path = await recorder_path(nats.url, pg, len(bodies), args.batch_size, args.flush_ms,
                                   psutil.Process(nats.proc.pid))
        print(f"recorder path:  {path['rows_per_s']:>8,} rows/s  ({path['rows']:,} rows in "
              f"{path['seconds']} s, {path['batches']} batches of mean "
              f"{path['mean_batch_ms']} ms)")
        print(f"  cpu us/row: recorder {path['recorder_cpu_us_per_row']}, nats-server "
              f"{path['nats_server_cpu_us_per_row']}, postgres {path['postgres_cpu_us_per_row']}"
              f" -> one recorder on its own core: ~{path['recorder_rows_per_cpu_s']:,} rows/s")
    finally:
        pg.stop()
        nats.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    target = 50_000
    # What the CPU time says the rates would be without other load on the machine: the raw
    # path is sequential (COPY, then PostgreSQL inserts), so its rows cost writer + server
    # CPU back to back; the recorder process is the recorder path's bottleneck.
    raw["cpu_bound_rows_per_s"] = round(
        1e6 / (raw["writer_cpu_us_per_row"] + raw["postgres_cpu_us_per_row"]))
    path["cpu_bound_rows_per_s"] = round(1e6 / path["recorder_cpu_us_per_row"])
    print(f"unloaded estimate from CPU time: raw {raw['cpu_bound_rows_per_s']:,} rows/s, "
          f"recorder {path['cpu_bound_rows_per_s']:,} rows/s")
    return {
        "bench": "recorder", "klines": args.klines, "symbols": args.symbols,
        "batch_size": args.batch_size, "flush_ms": args.flush_ms,
        "postgres": "durable (fsync on)" if args.durable else "temporary (fsync off)",
        "raw_write_path": raw, "decode": dec, "publish": pub, "recorder_path": path,
        "target_rows_per_s": target,
        "raw_meets_target": raw["rows_per_s"] >= target,
        "recorder_meets_target": path["rows_per_s"] >= target,
        "machine": {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--klines", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--flush-ms", type=int, default=100)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync on")
    parser.add_argument("--repeat", type=int, default=3, help="raw write path runs (the "
                        "median is reported)")
    result = uvloop.run(main(parser.parse_args()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
