"""OpenTelemetry tracing and W3C trace-context propagation over NATS headers.

A signal's span follows it across the bus (DESIGN.md, Cross-cutting): the publisher calls
:func:`inject_headers` and publishes with those headers; the consumer opens its span with
:func:`consumer_span` (or ``tracer.start_as_current_span(..., context=extract_context(h))``),
so the risk check, the order and the fill share the signal's trace id. The carrier format
is W3C Trace Context (``traceparent``/``tracestate``, https://www.w3.org/TR/trace-context/).

Tracing is off by default in the sense that nothing is exported: :func:`setup_tracing`
without an endpoint still installs an SDK tracer provider, so spans get real ids that logs
(``trace_id``) and NATS headers carry, but no span leaves the process. With an OTLP
endpoint (argument or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_ENDPOINT``) spans are batched to an OTLP/HTTP collector.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_W3C = TraceContextTextMapPropagator()
TRACEPARENT = "traceparent"


class _HeaderGetter(Getter[Mapping[str, str]]):
    """Case-insensitive lookup: NATS headers keep whatever case the publisher used."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        key = key.lower()
        for k, v in carrier.items():
            if k.lower() == key:
                return [v]
        return None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier.keys())


_GETTER = _HeaderGetter()


def _traces_endpoint(endpoint: str) -> str:
    """OTLP/HTTP wants the full URL; accept a base URL like ``http://collector:4318``."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"otlp_endpoint {endpoint!r} must be an http(s) URL, e.g. http://otel-collector:4318"
        )
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def setup_tracing(
    service_name: str,
    otlp_endpoint: str | None = None,
    *,
    span_exporter: SpanExporter | None = None,
    sample_ratio: float = 1.0,
) -> TracerProvider:
    """Install (once per process) the SDK tracer provider for ``service_name``; return it.

    Parameters
    ----------
    service_name : str
        ``service.name`` resource attribute, e.g. ``"tradefleet-risk"``.
    otlp_endpoint : str, optional
        OTLP/HTTP collector URL (``http://otel-collector:4318``; ``/v1/traces`` is added when
        no path is given). Defaults to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
        ``OTEL_EXPORTER_OTLP_ENDPOINT``; when none is set nothing is exported.
    span_exporter : SpanExporter, optional
        Extra exporter attached with a synchronous processor (tests use
        ``InMemorySpanExporter``).
    sample_ratio : float
        Fraction of root traces kept (0..1); children follow their parent's decision.

    OpenTelemetry allows one global provider per process: a second call (several components
    in one process, tests) reuses the first provider, keeping its service name, and only
    adds the new exporters. Call ``provider.shutdown()`` at exit to flush batched spans.
    """
    if not 0.0 <= sample_ratio <= 1.0:
        raise ValueError(f"sample_ratio must be within 0..1, got {sample_ratio}")
    endpoint = (
        otlp_endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        )
        trace.set_tracer_provider(provider)
    if endpoint:
        # Imported lazily: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_endpoint(endpoint)))
        )
        log.info(
            "tracing exports over OTLP/HTTP", extra={"otlp_endpoint": _traces_endpoint(endpoint)}
        )
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


def get_tracer(name: str) -> trace.Tracer:
    """A tracer from the global provider (a no-op one until :func:`setup_tracing`)."""
    return trace.get_tracer(name)


def inject_headers(
    headers: Mapping[str, str] | None = None, context: otel_context.Context | None = None
) -> dict[str, str]:
    """Return a copy of ``headers`` with the current (or given) span's W3C ``traceparent``
    (and ``tracestate``) added; unchanged when there is no valid span."""
    out = dict(headers or {})
    _W3C.inject(out, context=context)
    return out


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The OpenTelemetry context carried by NATS ``headers`` (any case); an empty context
    when there is no valid ``traceparent``, so a consumer's span then starts a new trace."""
    return _W3C.extract(headers or {}, getter=_GETTER)


@contextmanager
def consumer_span(
    name: str,
    headers: Mapping[str, str] | None,
    subject: str,
    tracer: trace.Tracer | None = None,
) -> Iterator[trace.Span]:
    """Open the current span for handling one message, as a child of the publisher's span.

    Attributes follow the OpenTelemetry messaging conventions (``messaging.system = nats``,
    ``messaging.destination.name = subject``); kind is CONSUMER.
    """
    tracer = tracer or get_tracer("tradefleet.bus")
    with tracer.start_as_current_span(
        name,
        context=extract_context(headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": "nats", "messaging.destination.name": subject},
    ) as span:
        yield span


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span as 32/16 lower-case hex, or ``None``."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
