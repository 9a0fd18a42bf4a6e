"""JSON logs: one object per line, trace ids inside spans, secrets masked."""

import io
import logging

import orjson
import pytest

from tradefleet.telemetry.logging import setup_logging
from tradefleet.telemetry.tracing import get_tracer

SECRET = "Zq8vN3kR7tY1wB5mC2xL9pD4fG6hJ0sA" * 2  # 64 chars, shape of a Binance API key


@pytest.fixture
def lines():
    out = io.StringIO()
    handler = setup_logging("bot", "DEBUG", stream=out)
    yield lambda: [orjson.loads(x) for x in out.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_log_line_is_json_with_standard_fields_and_extras(lines):
    logging.getLogger("tradefleet.workers.bot").info("order placed", extra={"symbol": "BTCUSDT"})
    (line,) = lines()
    assert {k: line[k] for k in ("level", "logger", "msg", "component", "symbol")} == {
        "level": "INFO",
        "logger": "tradefleet.workers.bot",
        "msg": "order placed",
        "component": "bot",
        "symbol": "BTCUSDT",
    }
    assert line["ts"].endswith("Z") and "trace_id" not in line


def test_log_inside_a_span_carries_its_trace_id(lines, spans):
    with get_tracer("t").start_as_current_span("signal") as span:
        logging.getLogger("t").info("sizing")
    (line,) = lines()
    ctx = span.get_span_context()
    assert (line["trace_id"], line["span_id"]) == (
        format(ctx.trace_id, "032x"),
        format(ctx.span_id, "016x"),
    )


def test_secret_passed_in_extra_never_reaches_the_log(lines):
    logging.getLogger("t").info(
        "creds loaded",
        extra={
            "api_key": SECRET,
            "exchange": {"apiSecret": "s3cr3t-value"},
            "note": f"key is {SECRET}",
        },
    )
    text = "".join(orjson.dumps(x).decode() for x in lines())
    assert SECRET not in text and "s3cr3t-value" not in text
    assert lines()[0]["api_key"] == "***"


def test_signed_url_and_database_password_are_masked_in_messages(lines):
    logging.getLogger("t").warning(
        "GET https://fapi.binance.com/fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=%s "
        "failed; db %s",
        "a" * 64,
        "postgresql://tf:pa55word@db:5432/tf",
    )
    msg = lines()[0]["msg"]
    assert "a" * 64 not in msg and "pa55word" not in msg
    assert (
        "signature=***" in msg
        and "postgresql://tf:***@db:5432/tf" in msg
        and "symbol=BTCUSDT" in msg
    )


def test_secrets_in_exception_tracebacks_are_masked(lines):
    try:
        raise RuntimeError(f"binanceusdm 400 X-MBX-APIKEY: {SECRET}")
    except RuntimeError:
        logging.getLogger("t").exception("order rejected")
    line = lines()[0]
    assert "RuntimeError" in line["exc"] and SECRET not in line["exc"]


def test_unknown_log_level_is_refused_naming_it():
    with pytest.raises(ValueError, match="log level 'LOUD' is not one of"):
        setup_logging("bot", "LOUD")


def test_setup_logging_twice_keeps_one_handler():
    first = setup_logging("a", stream=io.StringIO())
    second = setup_logging("b", stream=io.StringIO())
    root = logging.getLogger().handlers
    assert second in root and first not in root
    root.remove(second)
