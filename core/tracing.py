"""OpenTelemetry traces: API request -> outbox -> Kafka -> executor -> Kafka -> bridge -> agent call.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then `init`
sets up the SDK with an OTLP/HTTP exporter (the standard OTEL_* variables apply: OTEL_SERVICE_NAME
overrides the process's own name, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, ...). Off, every
span here is the API's no-op span and nothing is injected anywhere.

The trace context travels as W3C `traceparent` / `tracestate`: in HTTP headers (into the API, out to
the agent), in the outbox row (`trace_context`, from the transaction that wrote it to the relay that
sends it) and in Kafka message headers, which are what consumers read.
"""

import contextlib
import logging
import os
import re

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

log = logging.getLogger(__name__)
TRACER_NAME = "wfplatform"
SERVICE_PREFIX = "wfplatform-"


class _State:
    on = False  # an SDK provider is set up: spans are recorded and contexts injected
    tracer: trace.Tracer = trace.NoOpTracer()
    provider = None


_state = _State()


def configured() -> bool:
    """Whether the environment asks for traces (an OTLP endpoint, and the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def enabled() -> bool:
    return _state.on


def init(process: str) -> bool:
    """Sets up tracing for this process (`web`, `executor`, `bridge`, `worker`) when configured; the
    first call wins. Returns whether tracing is on."""
    if _state.on or not configured():
        return _state.on
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours only when unset.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: SERVICE_PREFIX + process}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    use(provider)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    log.info("tracing on: spans of %s go to %s", provider.resource.attributes.get(SERVICE_NAME), endpoint)
    return True


def use(provider) -> None:
    """Records spans with `provider` (None: off again). `init` calls it; tests give an in-memory one."""
    _state.provider = provider
    _state.on = provider is not None
    _state.tracer = provider.get_tracer(TRACER_NAME) if provider is not None else trace.NoOpTracer()


def shutdown() -> None:
    """Sends the spans still buffered (at a clean stop of the executor or the bridge)."""
    if _state.provider is not None and hasattr(_state.provider, "force_flush"):
        try:
            _state.provider.force_flush(timeout_millis=5000)
        except Exception:  # noqa: BLE001 - a collector that is away must not hold up the stop
            log.warning("could not flush the last spans", exc_info=True)


def celery_hook() -> None:
    """Each Celery worker process (after the fork) sets up its own tracing."""
    from celery.signals import worker_process_init

    worker_process_init.connect(_worker_init, weak=False, dispatch_uid="core.tracing")


def _worker_init(**kwargs) -> None:
    init("worker")


# --- spans -------------------------------------------------------------------------------------------


def attributes_of(message: dict) -> dict:
    """The span attributes a run message gives: run.id, step.id, task.id, agent.name."""
    names = {"run_id": "run.id", "step_id": "step.id", "task_id": "task.id", "agent_name": "agent.name"}
    return {attribute: str(message[key]) for key, attribute in names.items() if message.get(key)}


def annotate(attributes: dict) -> None:
    """Adds attributes learnt while handling (the step of a result) to the current span."""
    if _state.on:
        trace.get_current_span().set_attributes({key: str(value) for key, value in attributes.items() if value})


def outcome(ok: bool, error: str | None = None) -> None:
    """Marks the current span failed (with the reason) when `ok` is false."""
    if _state.on and not ok:
        trace.get_current_span().set_status(trace.Status(trace.StatusCode.ERROR, (error or "")[:500]))


@contextlib.contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: dict | None = None, parent=None):
    """A span (a no-op one when tracing is off), current inside the block. `parent`: a carrier (a dict
    of `traceparent` / `tracestate`, or Kafka headers) whose context the span continues."""
    if not _state.on:
        yield trace.INVALID_SPAN
        return
    ctx = extract(parent) if parent is not None else None
    with _state.tracer.start_as_current_span(name, context=ctx, kind=kind, attributes=attributes) as current:
        yield current


def carrier() -> dict | None:
    """The current trace context as a dict (`traceparent`, maybe `tracestate`); None when there is none."""
    if not _state.on:
        return None
    values: dict = {}
    propagate.inject(values)
    return values or None


def inject(headers: dict) -> dict:
    """Adds the current context to HTTP headers (`traceparent`); returns them."""
    if _state.on:
        propagate.inject(headers)
    return headers


def kafka_headers(context: dict | None = None) -> list[tuple[str, bytes]] | None:
    """Kafka message headers for the current context (or the carrier given); None when there is none."""
    values = context if context is not None else carrier()
    if not values:
        return None
    return [(key, str(value).encode()) for key, value in values.items()]


def extract(headers) -> otel_context.Context:
    """The context in a carrier: a dict, or Kafka headers (a list of (key, bytes) pairs)."""
    if headers is None:
        return otel_context.Context()
    if not isinstance(headers, dict):
        headers = {key: value.decode("latin-1") if isinstance(value, bytes) else value for key, value in headers}
    return propagate.extract(headers, context=otel_context.Context())


class TracingMiddleware:
    """One SERVER span per request (continuing the caller's `traceparent`), named after the route."""

    def __init__(self, get_response):
        self.get_response = get_response
        init("web")  # once per web process (a gunicorn worker loads the app after its fork)

    def __call__(self, request):
        if not _state.on:
            return self.get_response(request)
        attributes = {"http.request.method": request.method, "url.path": request.path}
        request_id = getattr(request, "request_id", None)
        if request_id:
            attributes["request.id"] = request_id
        parent = _lower(request.headers)
        with span(request.method, kind=SpanKind.SERVER, attributes=attributes, parent=parent) as current:
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            route = getattr(match, "route", None)
            if route:
                current.update_name(f"{request.method} /{route_name(route)}")
                current.set_attribute("http.route", "/" + route_name(route))
            current.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                current.set_status(trace.Status(trace.StatusCode.ERROR))
            return response


def route_name(route: str) -> str:
    """`api/v1/runs/{pk}` for the router's `^api/v1/runs/(?P<pk>[^/.]+)/?$`: one span name per route."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route.lstrip("^").rstrip("$"))
    return route.removesuffix("/?")


def _lower(headers) -> dict:
    return {key.lower(): value for key, value in headers.items()}
