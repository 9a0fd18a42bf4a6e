"""The replay clock and the admin API: status, stepping, start/pause, reset, faults."""

from __future__ import annotations

import time

import ccxt.async_support as ccxt
import httpx
import pytest

from .conftest import BTC, INITIAL, csv_funding, csv_klines, csv_mark

pytestmark = pytest.mark.timeout(120)

MINUTE = 60_000


def test_status_reports_symbols_bars_loaded_and_a_paused_clock_at_the_first_bar(admin):
    status = admin.status()
    first = int(csv_klines("BTCUSDT")[0]["open_time"])
    assert status["symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert status["bars_loaded"] == sum(len(csv_klines(s)) for s in status["symbols"])
    assert (status["bars_replayed"], status["running"], status["replay_clock"]) == (0, False, first)
    assert status["replay_clock_iso"] == "2025-05-05T00:00:00Z"
    assert status["ws_clients"] == 0


def test_step_replays_every_symbol_one_minute_bar_in_lockstep(admin):
    before = admin.clock()
    status = admin.step(5)
    assert status["stepped"] == 5 and status["steps_replayed"] == 5
    assert status["bars_replayed"] == 15  # 3 symbols x 5 bars
    assert status["replay_clock"] == before + 5 * MINUTE


def test_admin_step_rejects_a_non_positive_bar_count_with_422(admin):
    resp = admin.http.post("/admin/replay/step", json={"bars": 0})
    assert resp.status_code == 422 and "bars" in resp.text
    assert admin.status()["steps_replayed"] == 0


async def test_rest_klines_show_only_bars_closed_by_the_replay_clock(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    candles = await exchange.fetch_ohlcv(BTC, "1m", since=int(rows[0]["open_time"]), limit=100)
    assert [c[0] for c in candles] == [int(r["open_time"]) for r in rows[:3]]
    assert [c[1:6] for c in candles] == [[float(r[k]) for k in ("open", "high", "low", "close",
                                                                 "volume")] for r in rows[:3]]


async def test_rest_klines_of_a_longer_interval_include_the_forming_bar_up_to_the_clock(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(7)  # 00:00..00:06 closed: one whole 5m bar and a 2-minute forming one
    candles = await exchange.fetch_ohlcv(BTC, "5m", limit=10)
    assert [c[0] for c in candles] == [int(rows[0]["open_time"]), int(rows[5]["open_time"])]
    assert candles[1][4] == float(rows[6]["close"])


async def test_server_time_is_the_wall_clock_while_status_reports_the_replay_clock(exchange, admin):
    server_time = await exchange.fetch_time()
    assert abs(server_time - time.time() * 1000) < 5_000
    assert admin.clock() == int(csv_klines("BTCUSDT")[0]["open_time"])


def test_start_replays_at_the_set_speed_and_pause_stops_it(admin):
    admin._ok(admin.http.post("/admin/replay/speed", json={"speed_bars_per_sec": 200}))
    started = admin._ok(admin.http.post("/admin/replay/start"))
    assert started["running"] is True
    time.sleep(0.5)
    paused = admin._ok(admin.http.post("/admin/replay/pause"))
    assert paused["running"] is False
    assert 30 <= paused["steps_replayed"] <= 150  # ~100 bars at 200 bars/s
    time.sleep(0.1)
    assert admin.status()["steps_replayed"] == paused["steps_replayed"]


def test_seed_style_replay_call_sets_speed_and_starts(admin):
    status = admin._ok(admin.http.post("/admin/replay", json={"speed_bars_per_sec": 50}))
    assert status["running"] is True and status["speed_bars_per_sec"] == 50
    admin._ok(admin.http.post("/admin/replay/pause"))


def test_speed_must_be_positive(admin):
    resp = admin.http.post("/admin/replay/speed", json={"speed_bars_per_sec": 0})
    assert resp.status_code == 422 and "speed_bars_per_sec" in resp.text


async def test_reset_rewinds_the_replay_and_restores_the_initial_balance(exchange, admin):
    admin.step(3)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    admin.step(2)
    status = admin.reset()
    assert (status["steps_replayed"], status["bars_replayed"]) == (0, 0)
    assert status["replay_clock"] == int(csv_klines("BTCUSDT")[0]["open_time"])
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] == float(INITIAL)
    assert await exchange.fetch_positions([BTC]) == []


async def test_orders_are_stamped_with_the_replay_clock(exchange, admin):
    admin.step(4)
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 90_000)
    assert order["timestamp"] == admin.clock()


async def test_funding_is_charged_at_eight_utc_from_the_recorded_rate_and_8h_mark(exchange, admin):
    t0 = int(csv_klines("BTCUSDT")[0]["open_time"])
    eight = t0 + 8 * 3600 * 1000
    admin.step(5)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    admin.step(480 - 5)  # clock now 08:00:00.000; the 08:00 event settles with the next bar
    assert await exchange.fetch_funding_history(BTC) == []
    admin.step(1)
    [paid] = await exchange.fetch_funding_history(BTC)
    [event] = [r for r in csv_funding("BTCUSDT") if eight <= int(r["funding_time"]) < eight + MINUTE]
    [mark] = [r for r in csv_mark("BTCUSDT") if int(r["open_time"]) == eight]
    expected = -0.01 * float(mark["open"]) * float(event["funding_rate"])  # longs pay positive rates
    assert paid["amount"] == pytest.approx(expected, abs=1e-8)
    assert paid["timestamp"] == int(event["funding_time"])


def test_http_429_fault_answers_binance_body_and_retry_after(base_url, admin):
    admin.faults(http_429_rate=1.0, retry_after_s=7)
    resp = httpx.get(base_url + "/fapi/v1/time")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert resp.json()["code"] == -1003


async def test_http_429_fault_makes_ccxt_raise_ddos_protection(exchange, admin):
    admin.faults(http_429_rate=1.0)
    with pytest.raises(ccxt.DDoSProtection):
        await exchange.fetch_time()


async def test_http_5xx_fault_answers_503_with_1001_and_ccxt_raises_operation_failed(base_url, exchange, admin):
    admin.faults(http_5xx_rate=1.0)
    assert httpx.get(base_url + "/fapi/v1/ping").status_code == 503
    with pytest.raises(ccxt.OperationFailed, match="-1001"):
        await exchange.fetch_time()


async def test_latency_fault_delays_every_rest_request(exchange, admin):
    admin.faults(latency_ms=150)
    t = time.perf_counter()
    await exchange.fetch_time()
    assert time.perf_counter() - t >= 0.15


async def test_order_reject_fault_rejects_new_orders_with_2010_and_changes_nothing(exchange, admin):
    admin.step(3)
    admin.faults(order_reject_rate=1.0)
    with pytest.raises(ccxt.InvalidOrder, match="-2010"):
        await exchange.create_order(BTC, "market", "buy", 0.01)
    admin.faults(order_reject_rate=0.0)
    assert await exchange.fetch_positions([BTC]) == []
    assert await exchange.fetch_my_trades(BTC) == []


def test_fault_rates_are_reproducible_with_a_seed(admin):
    def draws() -> list[int]:
        admin.faults(http_429_rate=0.5, seed=42)
        return [admin.http.get("/fapi/v1/ping").status_code for _ in range(20)]

    first = draws()
    assert first == draws() and 429 in first and 200 in first


def test_bad_fault_value_gets_422_naming_the_field_and_changes_nothing(admin):
    resp = admin.http.post("/admin/faults", json={"http_429_rate": 2})
    assert resp.status_code == 422 and "http_429_rate" in resp.text
    assert admin.http.get("/admin/faults").json()["http_429_rate"] == 0.0


def test_stepping_past_the_last_bar_answers_409_and_status_says_finished(admin):
    total = admin.status()["steps_total"]
    status = admin.step(total)
    assert status["finished"] is True and status["steps_replayed"] == total
    resp = admin.http.post("/admin/replay/step", json={"bars": 1})
    assert resp.status_code == 409 and "reset" in resp.json()["detail"]


async def test_a_long_step_delivers_every_bar_to_a_websocket_reader_in_order(base_url, admin):
    import asyncio
    import json

    import websockets

    bars = 6000  # with the mark price stream: 12,000 frames, more than one send queue holds
    rows = csv_klines("ETHUSDT")[:bars]
    url = base_url.replace("http://", "ws://") + "/stream?streams=ethusdt@kline_1m/ethusdt@markPrice"
    async with websockets.connect(url) as ws:
        step = asyncio.get_running_loop().run_in_executor(None, admin.step, bars)
        got = []
        while len(got) < bars:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg["stream"] == "ethusdt@kline_1m":
                got.append(msg["data"]["k"]["t"])
        await step
    assert got == [int(r["open_time"]) for r in rows]


def test_cli_starts_exsim_and_logs_where_to_point_a_client():
    import json
    import subprocess
    import sys

    from .conftest import DATA

    proc = subprocess.Popen([sys.executable, "-m", "tradefleet.cli", "exsim", "--data", str(DATA),
                             "--port", "0", "--paused", "--symbols", "SOLUSDT",
                             "--api-key", "cli-key", "--api-secret", "cli-secret"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stderr:
            rec = json.loads(line)
            if rec["msg"] == "exsim listening":
                break
        assert rec["api_key"] == "cli-key" and "cli-secret" not in line
        assert "fetchCurrencies" in rec["ccxt"] and rec["ws_raw_url"].startswith("ws://")
        base = rec["rest_base_url"].removesuffix("/fapi")
        assert httpx.get(base + "/admin/status").json()["symbols"] == ["SOLUSDT"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_with_a_missing_data_folder_exits_2_naming_the_folder(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "nope"
    out = subprocess.run([sys.executable, "-m", "tradefleet.cli", "exsim", "--data", str(missing),
                          "--port", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and str(missing) in out.stderr and "klines" in out.stderr
