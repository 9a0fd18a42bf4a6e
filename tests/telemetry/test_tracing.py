"""Trace context travels in NATS headers from publisher to consumer."""

import asyncio

import pytest
from opentelemetry import trace

from tradefleet.bus import subjects
from tradefleet.bus.publish import publish
from tradefleet.telemetry.tracing import (
    consumer_span,
    current_ids,
    extract_context,
    get_tracer,
    inject_headers,
    setup_tracing,
)


async def test_trace_context_published_on_nats_is_extracted_by_the_consumer(nc, spans):
    tracer = get_tracer("test")
    received: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_msg(msg):
        with consumer_span("risk.check", msg.headers, msg.subject):
            received.set_result(current_ids())

    await nc.subscribe("test.signal", cb=on_msg)
    with tracer.start_as_current_span("signal") as span:
        sent_trace = format(span.get_span_context().trace_id, "032x")
        await nc.publish("test.signal", b"{}", headers=inject_headers())
    trace_id, _ = await asyncio.wait_for(received, 5)
    assert trace_id == sent_trace
    consumer = next(s for s in spans.get_finished_spans() if s.name == "risk.check")
    assert consumer.parent.span_id == span.get_span_context().span_id
    assert consumer.attributes["messaging.destination.name"] == "test.signal"


async def test_bus_publish_carries_the_current_trace_into_jetstream(bus, spans):
    subject = subjects.fleet("prod", "bot-a", "signal")
    with get_tracer("test").start_as_current_span("signal") as span:
        await publish(bus, subject, {"side": "BUY"})
    stored = await bus.get_last_msg("FLEET", subject)
    ctx = trace.get_current_span(extract_context(stored.headers)).get_span_context()
    assert ctx.trace_id == span.get_span_context().trace_id


def test_inject_without_a_span_adds_nothing():
    assert inject_headers({"Nats-Msg-Id": "x"}) == {"Nats-Msg-Id": "x"}


def test_extract_accepts_any_header_case(spans):
    with get_tracer("test").start_as_current_span("s") as span:
        headers = {k.title(): v for k, v in inject_headers().items()}
    ctx = trace.get_current_span(extract_context(headers)).get_span_context()
    assert "Traceparent" in headers and ctx.trace_id == span.get_span_context().trace_id


def test_missing_traceparent_starts_a_new_trace(spans):
    with consumer_span("handle", {}, "md.exsim.BTCUSDT.mark") as span:
        assert span.get_span_context().is_valid
    assert spans.get_finished_spans()[-1].parent is None


def test_setup_tracing_rejects_a_non_http_endpoint():
    with pytest.raises(ValueError, match="otlp_endpoint 'collector:4318' must be an http"):
        setup_tracing("x", otlp_endpoint="collector:4318")
