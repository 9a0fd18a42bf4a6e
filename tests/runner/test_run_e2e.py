"""`tradefleet run`: the main job end to end, through the same command `make run` uses.

One UTC day of the bundled real data, the three example bots, every component its own
process; the report must reconcile with the database the recorder wrote and with exsim.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from decimal import Decimal

import psycopg
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CENT = Decimal("0.01")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _run(args, env, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tradefleet.cli", "run", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def _leftovers(marker: str) -> list[str]:
    """Processes whose command line names ``marker`` (the run's output folder)."""
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


@pytest.fixture(scope="module")
def day_run(tmp_path_factory, database_url):
    """One run over 2025-05-05 (1,440 lockstep bars) into a fresh database."""
    out = tmp_path_factory.mktemp("run") / "out"
    dbname = "run_e2e"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname}")
        conn.execute(f"CREATE DATABASE {dbname}")
    url = database_url.rsplit("/", 1)[0] + f"/{dbname}"
    started = time.monotonic()
    proc = _run(["examples/", "--until", "2025-05-06T00:00Z", "--out", str(out), "--no-live"],
                _env(DATABASE_URL=url))
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-5000:]}"
    report = json.loads((out / "report.json").read_text())
    yield {"out": out, "report": report, "url": url, "elapsed": elapsed, "proc": proc}


def test_the_day_run_trades_and_every_bot_reconciles_with_exsim(day_run):
    report = day_run["report"]
    assert {b["bot"] for b in report["bots"]} == {
        "default/momentum-btc", "default/ema-cross-eth", "default/mean-reversion-sol"}
    assert report["total"]["trades"] > 0 and report["total"]["fills"] > 0
    for bot in report["bots"]:
        rec = bot["reconciliation"]
        assert rec["ok"], f"{bot['bot']} does not reconcile: {rec}"
    assert report["total"]["reconciled"] is True
    assert report["replay"]["to_ms"] == 1746489600000  # 2025-05-06T00:00Z


def test_report_numbers_equal_the_recorded_rows(day_run):
    report, url = day_run["report"], day_run["url"]
    with psycopg.connect(url) as conn:
        bars = conn.execute("SELECT symbol, count(*) FROM bars WHERE interval = '1m' "
                            "GROUP BY symbol").fetchall()
        assert dict(bars) == {"BTCUSDT": 1440, "ETHUSDT": 1440, "SOLUSDT": 1440}
        for bot in report["bots"]:
            ns, name = bot["bot"].split("/")
            realized, fees, fills = conn.execute(
                "SELECT coalesce(sum(realized_pnl), 0), coalesce(sum(fee), 0), count(*) "
                "FROM fills WHERE namespace = %s AND bot = %s", (ns, name)).fetchone()
            assert abs(realized - Decimal(bot["realized_pnl_usdt"])) < CENT
            assert abs(fees - Decimal(bot["fees_usdt"])) < CENT
            assert fills == bot["fills"]
            decisions = conn.execute(
                "SELECT count(*) FROM risk_events WHERE type = 'decision' AND bot = %s",
                (bot["bot"],)).fetchone()[0]
            assert decisions == sum(bot["risk_decisions"].values())
        run = conn.execute("SELECT report IS NOT NULL, ended_at IS NOT NULL FROM runs "
                           "WHERE run_id = %s", (report["run_id"],)).fetchone()
        assert run == (True, True)


def test_wallet_is_initial_plus_realized_minus_fees_plus_funding(day_run):
    for bot in day_run["report"]["bots"]:
        ex = bot["reconciliation"]["exsim"]
        expected = (Decimal(bot["initial_equity_usdt"]) + Decimal(ex["realized_pnl_usdt"])
                    - Decimal(ex["fees_usdt"]) + Decimal(ex["funding_usdt"]))
        assert abs(Decimal(ex["wallet_balance_usdt"]) - expected) < CENT


def test_report_is_written_as_json_and_html_with_the_equity_plot(day_run):
    out = day_run["out"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "momentum-btc" in html
    assert (out / "equity.csv").read_text().count("\n") > 1000
    assert "fleet report" in day_run["proc"].stdout


def test_every_process_of_the_run_is_gone_afterwards(day_run):
    assert _leftovers(str(day_run["out"])) == []


def test_an_invalid_manifest_stops_the_run_before_anything_starts(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "examples" / "ema-cross-eth.yaml").read_text()
                   .replace("riskPctPerTrade: 0.5", "riskPctPerTrade: 50"))
    out = tmp_path / "out"
    started = time.monotonic()
    proc = _run([str(bad), "--out", str(out)], _env(), timeout=120)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "spec.sizing.riskPctPerTrade" in proc.stderr
    assert "less than or equal to 5" in proc.stderr
    assert not out.exists() and time.monotonic() - started < 30


def test_ctrl_c_stops_every_component_and_exits(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tradefleet.cli", "run", "examples/",
                             "--out", str(out), "--no-live"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list((out / "logs").glob("bot-*.log")):
        time.sleep(0.5)
    time.sleep(3)  # bots up, replay running
    if not _leftovers(str(out)):
        proc.kill()
        pytest.fail(f"the run did not start its components:\n{proc.stderr.read()[-3000:]}")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, proc.stderr.read()[-3000:]
    assert _leftovers(str(out)) == []
