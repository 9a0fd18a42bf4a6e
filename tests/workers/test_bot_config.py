"""Bot worker: configuration, credentials, message models and the PnL book (no servers)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from tradefleet.workers.bot.config import (
    ConfigError,
    config_hash,
    credentials_from_env,
    load_bot,
)
from tradefleet.workers.bot.ledger import Ledger
from tradefleet.workers.bot.main import main
from tradefleet.workers.bot.market import durable_name, feed_subjects

from tradefleet.bus import codec
from tradefleet.bus.fleet_messages import (
    Command,
    CommandMsg,
    OrderMsg,
    Phase,
    StatusMsg,
    order_msg_id,
)

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {name: ema-btc, namespace: paper}
spec:
  venue: exsim
  symbols: [BTCUSDT]
  interval: 1m
  strategy: {name: ema_cross, params: {ema_fast: 3, ema_slow: 8}}
  endpoints: {restUrl: "http://127.0.0.1:9010"}
  sizing: {riskPctPerTrade: 1}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_invalid_config_exits_2_naming_each_bad_field(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("riskPctPerTrade: 1", "riskPctPerTrade: 12")
                  .replace("ema_slow: 8", "ema_slow: 2"))
    code = main(str(path))
    err = capsys.readouterr().err
    assert code == 2
    assert "spec.sizing.riskPctPerTrade" in err and "12" in err
    assert "ema_slow" in err


def test_cli_bot_command_exits_2_on_an_unknown_field(tmp_path):
    path = _write(tmp_path, GOOD.replace("interval: 1m", "interval: 1m\n  leverag: 3"))
    proc = subprocess.run([sys.executable, "-m", "tradefleet.cli", "bot", "--config", str(path)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
                          env={**os.environ, "NATS_URL": "nats://127.0.0.1:1"})
    assert proc.returncode == 2, proc.stderr
    assert "spec.leverag" in proc.stderr


def test_missing_config_file_is_named(tmp_path, capsys):
    assert main(str(tmp_path / "nope.yaml")) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_binance_venue_without_keys_is_refused_naming_the_variables(tmp_path):
    path = _write(tmp_path, GOOD.replace("venue: exsim", "venue: binanceusdm\n  mode: testnet\n"
                                         "  credentialsSecretRef: {name: keys}"))
    bot = load_bot(path)
    with pytest.raises(ConfigError, match="TRADEFLEET_API_KEY and TRADEFLEET_API_SECRET"):
        credentials_from_env(bot, env={})


def test_exsim_credentials_fall_back_to_exsim_env_then_default(tmp_path):
    bot = load_bot(_write(tmp_path, GOOD))
    assert credentials_from_env(bot, env={}).api_key == "exsim-key"
    env = {"EXSIM_API_KEY": "k1,k2", "EXSIM_API_SECRET": "s1,s2"}
    creds = credentials_from_env(bot, env=env)
    assert (creds.api_key, creds.api_secret) == ("k1", "s1")
    assert "s1" not in repr(creds) and "k1" not in repr(creds)


def test_config_hash_changes_with_the_spec_not_with_formatting(tmp_path):
    a = load_bot(_write(tmp_path, GOOD))
    b = load_bot(_write(tmp_path, GOOD.replace("{ema_fast: 3, ema_slow: 8}",
                                               "{ema_slow: 8, ema_fast: 3}")))
    c = load_bot(_write(tmp_path, GOOD.replace("riskPctPerTrade: 1", "riskPctPerTrade: 2")))
    assert config_hash(a) == config_hash(b) != config_hash(c)
    assert len(config_hash(a)) == 16


def test_consumer_name_and_subjects_come_from_the_manifest(tmp_path):
    bot = load_bot(_write(tmp_path, GOOD))
    assert durable_name("paper", "ema-btc") == "bot_paper_ema-btc"
    assert feed_subjects(bot.spec) == ["md.exsim.BTCUSDT.kline.1m", "md.exsim.BTCUSDT.funding",
                                       "md.exsim.BTCUSDT.mark"]


def test_loss_streak_counts_round_trips_net_of_fees():
    book = Ledger(loss_streak_limit=2)
    day = 1_746_403_200_000
    # Round trip 1: +5 gross, 6 in fees -> a loss.
    assert book.on_fill("BTCUSDT", Decimal(0), Decimal(3), day + 1, Decimal("0.1"), "1") is None
    t1 = book.on_fill("BTCUSDT", Decimal(5), Decimal(3), day + 2, Decimal(0), "2")
    assert t1 is not None and t1.net_pnl == Decimal(-1) and book.loss_streak == 1
    # Round trip 2: a take-profit tier, then the stop: one trade, a loss.
    book.on_fill("BTCUSDT", Decimal(0), Decimal(1), day + 3, Decimal("0.2"), "3")
    assert book.on_fill("BTCUSDT", Decimal(4), Decimal(1), day + 4, Decimal("0.1"), "4") is None
    t2 = book.on_fill("BTCUSDT", Decimal(-9), Decimal(1), day + 5, Decimal(0), "5")
    assert t2.net_pnl == Decimal(-8) and book.streak_tripped
    assert book.pnl_day == Decimal(-9) and book.realized == Decimal(-9)


def test_a_winning_trade_resets_the_streak_and_a_new_day_resets_day_pnl():
    book = Ledger(loss_streak_limit=3)
    day = 1_746_403_200_000
    book.on_fill("ETHUSDT", Decimal(0), Decimal(0), day, Decimal(1), "1")
    book.on_fill("ETHUSDT", Decimal(-2), Decimal(0), day + 1, Decimal(0), "2")
    book.on_fill("ETHUSDT", Decimal(0), Decimal(0), day + 86_400_000, Decimal(1), "3")
    book.on_fill("ETHUSDT", Decimal(7), Decimal(0), day + 86_400_001, Decimal(0), "4")
    assert book.loss_streak == 0 and book.won == 1 and book.lost == 1
    assert book.pnl_day == Decimal(7) and book.realized == Decimal(5)


def test_fleet_messages_round_trip_with_decimal_strings():
    msg = OrderMsg(namespace="paper", bot="ema-btc", symbol="BTCUSDT",
                   client_order_id="tf-1-2-entry", purpose="entry", type="market", side="buy",
                   qty=Decimal("0.012"), filled_qty=Decimal("0.012"), price=Decimal("94010.1"),
                   status="filled", latency_ms=1.25)
    data = codec.encode(msg.to_wire())
    assert b'"qty":"0.012"' in data and b'"price":"94010.1"' in data
    back = codec.decode(data, model=OrderMsg)
    assert back == msg
    assert order_msg_id(msg) == "paper:ema-btc:order:tf-1-2-entry:filled"


def test_status_message_decodes_with_fields_it_does_not_know():
    body = StatusMsg(namespace="a", bot="b", phase=Phase.HALTED, reason="loss streak",
                     ts_ms=1).to_wire()
    body["added_later"] = {"x": 1}
    back = codec.decode(codec.encode(body), model=StatusMsg)
    assert back.phase is Phase.HALTED and back.reason == "loss streak"


def test_unknown_command_is_refused_naming_the_field():
    with pytest.raises(codec.DecodeError, match="command"):
        codec.decode(codec.encode({"command": "explode", "command_id": "1", "ts_ms": 1}),
                     model=CommandMsg)
    ok = codec.decode(codec.encode({"command": "drain", "command_id": "1", "ts_ms": 1}),
                      model=CommandMsg)
    assert ok.command is Command.DRAIN
