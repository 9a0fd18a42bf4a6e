"""Subjects are built and parsed one way everywhere, and bad tokens are named."""

import pytest

from tradefleet.bus import subjects


def test_kline_subject_round_trips_through_parse():
    s = subjects.kline("binanceusdm", "BTCUSDT", "1m")
    assert s == "md.binanceusdm.BTCUSDT.kline.1m"
    p = subjects.parse(s)
    assert (p.plane, p.venue, p.symbol, p.kind, p.interval) == (
        "md",
        "binanceusdm",
        "BTCUSDT",
        "kline",
        "1m",
    )


@pytest.mark.parametrize("kind", ["mark", "funding", "trade", "book"])
def test_market_subjects_round_trip(kind):
    s = subjects.market("exsim", "ETHUSDT", kind)
    assert s == f"md.exsim.ETHUSDT.{kind}"
    assert subjects.parse(s).kind == kind


@pytest.mark.parametrize("kind", ["order", "fill", "position", "signal", "status", "heartbeat"])
def test_fleet_subjects_round_trip(kind):
    s = subjects.fleet("prod", "btc-momentum", kind)
    assert s == f"fleet.prod.btc-momentum.{kind}"
    p = subjects.parse(s)
    assert (p.plane, p.namespace, p.bot, p.kind) == ("fleet", "prod", "btc-momentum", kind)


def test_command_subject_parses_as_command_not_event():
    s = subjects.command("prod", "btc-momentum")
    assert s == "fleet.cmd.prod.btc-momentum"
    p = subjects.parse(s)
    assert (p.plane, p.namespace, p.bot) == ("cmd", "prod", "btc-momentum")


@pytest.mark.parametrize("subject", [*subjects.RISK_REQUESTS, subjects.RISK_EVENTS])
def test_risk_subjects_parse(subject):
    p = subjects.parse(subject)
    assert (p.plane, p.kind) == ("risk", subject.split(".")[1])


def test_dead_letter_subject_keeps_the_original_subject():
    original = subjects.kline("exsim", "BTCUSDT", "1h")
    s = subjects.dlq(original)
    assert s == "dlq.md.exsim.BTCUSDT.kline.1h"
    assert subjects.parse(s).original == subjects.parse(original)


def test_dead_letter_of_a_dead_letter_is_not_nested():
    s = subjects.dlq("md.exsim.BTCUSDT.mark")
    assert subjects.dlq(s) == s


@pytest.mark.parametrize(
    ("call", "part"),
    [
        (lambda: subjects.kline("binance.usdm", "BTCUSDT", "1m"), "venue 'binance.usdm'"),
        (lambda: subjects.kline("exsim", "BTC*", "1m"), "symbol 'BTC*'"),
        (lambda: subjects.kline("exsim", "BTC USDT", "1m"), "symbol 'BTC USDT'"),
        (lambda: subjects.kline("exsim", "BTCUSDT", ">"), "interval '>'"),
        (lambda: subjects.fleet("prod.eu", "bot", "order"), "namespace 'prod.eu'"),
        (lambda: subjects.fleet("prod", "", "order"), "bot must not be empty"),
        (lambda: subjects.command("prod", "my bot"), "bot 'my bot'"),
    ],
)
def test_tokens_with_dots_wildcards_or_spaces_are_rejected_naming_the_part(call, part):
    with pytest.raises(ValueError, match=part.replace("*", r"\*")):
        call()


def test_lowercase_symbol_is_rejected_with_the_expected_form():
    with pytest.raises(ValueError, match=r"symbol 'btcusdt' must be the exchange's upper-case id"):
        subjects.kline("exsim", "btcusdt", "1m")


def test_ccxt_unified_symbol_is_rejected():
    with pytest.raises(ValueError, match="symbol 'BTC/USDT:USDT'"):
        subjects.market("binanceusdm", "BTC/USDT:USDT", "mark")


def test_unknown_interval_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"interval '7m' is not a kline interval; use one of 1s, 1m"
    ):
        subjects.kline("exsim", "BTCUSDT", "7m")


def test_unknown_fleet_kind_is_rejected():
    with pytest.raises(ValueError, match=r"kind 'trade' is not one of fill, heartbeat"):
        subjects.fleet("prod", "bot", "trade")


def test_namespace_cmd_is_reserved_for_commands():
    with pytest.raises(ValueError, match="namespace 'cmd' is reserved"):
        subjects.fleet("cmd", "bot", "order")


def test_kline_needs_the_kline_builder():
    with pytest.raises(ValueError, match="needs an interval"):
        subjects.market("exsim", "BTCUSDT", "kline")


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("md.exsim.btcusdt.kline.1m", "symbol 'btcusdt'"),
        ("md.exsim.BTCUSDT.kline", "kline subjects end with an interval"),
        ("md.exsim.BTCUSDT.depth", "kind 'depth' is not one of"),
        ("fleet.prod.bot", "fleet subjects are"),
        ("orders.prod.bot", "unknown root 'orders'"),
    ],
)
def test_parse_names_the_subject_and_the_bad_part(subject, message):
    with pytest.raises(ValueError, match=rf"subject '{subject}': .*{message}"):
        subjects.parse(subject)


def test_md_filter_builds_consumer_wildcards():
    assert subjects.md_filter() == "md.*.*.>"
    assert subjects.md_filter("exsim", kind="kline") == "md.exsim.*.kline.*"
    assert subjects.md_filter(symbol="BTCUSDT", interval="1h") == "md.*.BTCUSDT.kline.1h"
    assert subjects.md_filter(kind="mark") == "md.*.*.mark"


def test_md_filter_rejects_interval_on_non_kline_kind():
    with pytest.raises(ValueError, match="interval '1m' applies only to kind 'kline'"):
        subjects.md_filter(kind="mark", interval="1m")


def test_fleet_filter_builds_consumer_wildcards():
    assert subjects.fleet_filter(namespace="prod", kind="fill") == "fleet.prod.*.fill"
    assert subjects.fleet_filter() == "fleet.*.*.*"
