"""`GET /runs/{id}/events` and `GET /events`: the events table as Server-Sent Events (docs/events.md).

The view itself is DRF's, run like any other (authentication, roles, 401 / 403 / 404 / 422 before the
stream starts); it answers a StreamingHttpResponse over an async generator, which the ASGI server
drives on its event loop: while a stream is idle it holds no thread and no database connection.
New events come from the process's one poller (runs/live.py).
"""

import asyncio
import json
import uuid

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.views import APIView

from core.api.renderers import JSONRenderer
from core.errors import FieldError, InvalidInput
from core.roles import Role
from runs.events import EVENT_TYPES
from runs.live import (
    TERMINAL_RUN_EVENTS,
    Subscriber,
    connections_release,
    db_call,
    event_last_id,
    events_after,
    poller,
    request_thread_release,
)
from runs.models import Event, Run

LAST_EVENT_ID = OpenApiParameter(
    "last_event_id",
    OpenApiTypes.INT,
    description="Replay the events after this id (the `Last-Event-ID` header, sent by browsers on a "
    "reconnect, wins over it). Not a number, or above the newest event: 422.",
)
LAST_EVENT_ID_HEADER = OpenApiParameter(
    "Last-Event-ID", OpenApiTypes.INT, location=OpenApiParameter.HEADER, description="As `last_event_id`."
)
EXAMPLE = (
    ': stream open\n\nid: 41\nevent: run.running\ndata: {"type":"run.running","timestamp":'
    '"2026-12-01T10:00:00.123Z","data":{"id":"...","status":"RUNNING"}}\n\n: keep-alive\n\n'
)
STREAM = {
    (200, "text/event-stream"): OpenApiResponse(
        OpenApiTypes.STR,
        description="`id`, `event`, `data` (the webhook body) per event; `: keep-alive` comments while idle.",
        examples=[OpenApiExample("Events", value=EXAMPLE, response_only=True)],
    )
}


def sse(event: Event) -> bytes:
    """The event as an SSE message; made once per event, however many streams send it (one object each)."""
    cached = getattr(event, "_sse", None)
    if cached is None:
        body = json.dumps(event.body(), separators=(",", ":"), ensure_ascii=False, default=str)
        cached = event._sse = f"id: {event.id}\nevent: {event.type}\ndata: {body}\n\n".encode()
    return cached


def last_event_id(request) -> int | None:
    """The client's last seen id (header first: EventSource keeps the query of its first URL)."""
    header = request.headers.get("Last-Event-ID")
    raw = header if header not in (None, "") else request.query_params.get("last_event_id")
    if raw in (None, ""):
        return None
    field = "Last-Event-ID" if header not in (None, "") else "last_event_id"
    if not raw.strip().isdigit():
        raise InvalidInput.one(field, f"Must be an event id (a whole number >= 0), not {raw!r}.")
    value, newest = int(raw), event_last_id()
    if value > newest:
        raise InvalidInput.one(field, f"Event {value} does not exist yet (the newest is {newest}).", "future")
    return value


class EventStreamView(APIView):
    read_role = Role.VIEWER
    renderer_classes = [JSONRenderer]  # for the errors; the stream is not rendered

    def perform_content_negotiation(self, request, force=False):
        # EventSource sends `Accept: text/event-stream`: errors still come back as JSON, never a 406.
        return super().perform_content_negotiation(request, force=True)

    def stream(self, subscriber: Subscriber, after: int | None) -> StreamingHttpResponse:
        connections_release()  # the stream outlives this thread's work: keep no connection for it
        response = StreamingHttpResponse(events_stream(subscriber, after), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies (nginx) pass events on at once
        return response


class RunEventsView(EventStreamView):
    @extend_schema(
        summary="Stream a run's events (Server-Sent Events)",
        description=(
            "Replays the run's events (after `Last-Event-ID` when given), then sends new ones as they are "
            "committed; ends after the run's terminal event. `: keep-alive` comments at least every 15 s."
        ),
        parameters=[LAST_EVENT_ID, LAST_EVENT_ID_HEADER],
        responses=STREAM,
    )
    def get(self, request, pk):
        if not Run.objects.filter(pk=pk).exists():
            raise exceptions.NotFound(f"Run {str(pk)!r} not found.")
        after = last_event_id(request)
        return self.stream(Subscriber(run_id=pk), after or 0)


class EventsView(EventStreamView):
    @extend_schema(
        summary="Stream every run's events (Server-Sent Events)",
        description=(
            "Events committed from now on, or those after `Last-Event-ID` first; never ends. Filters: "
            "`workflow_id`, `type` (several, or comma-separated)."
        ),
        parameters=[
            LAST_EVENT_ID,
            LAST_EVENT_ID_HEADER,
            OpenApiParameter("workflow_id", OpenApiTypes.UUID),
            OpenApiParameter("type", OpenApiTypes.STR, many=True, enum=EVENT_TYPES),
        ],
        responses=STREAM,
    )
    def get(self, request):
        errors, workflow_id = [], request.query_params.get("workflow_id") or None
        if workflow_id is not None:
            try:
                workflow_id = uuid.UUID(workflow_id)
            except ValueError:
                errors.append(FieldError("workflow_id", f"Must be a UUID, not {workflow_id!r}."))
        types = {name for value in request.query_params.getlist("type") for name in value.split(",") if name}
        unknown = sorted(types - set(EVENT_TYPES))
        if unknown:
            errors.append(FieldError("type", f"Unknown event types: {', '.join(unknown)}.", "invalid_choice"))
        if errors:
            raise InvalidInput(errors)
        after = last_event_id(request)
        return self.stream(Subscriber(workflow_id=workflow_id, types=types), after)


async def events_stream(subscriber: Subscriber, after: int | None):
    """Replay (ids after `after` up to the poller's cursor), then live; `after` None: live only."""
    request_thread_release()
    source = poller()
    cursor = await source.subscribe(subscriber)
    keepalive = settings.SSE_KEEPALIVE_SECONDS
    try:
        yield b": stream open\n\n"  # headers and a first byte at once: clients see the stream is up
        last = cursor if after is None else after
        while last < cursor:
            batch = await db_call(
                events_after, last, cursor, subscriber.run_id, subscriber.workflow_id, subscriber.types
            )
            if not batch:
                break
            for event in batch:
                yield sse(event)
            last = batch[-1].id
        if subscriber.run_id is not None and await db_call(run_finished, subscriber.run_id, cursor):
            return  # the run's last event is terminal and the client has it (now or before)
        last = max(last, cursor)
        while True:
            try:
                event = await asyncio.wait_for(subscriber.queue.get(), timeout=keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event.id <= last:
                continue
            last = event.id
            yield sse(event)
            if subscriber.run_id is not None and event.type in TERMINAL_RUN_EVENTS:
                return
    finally:
        source.unsubscribe(subscriber)


def run_finished(run_id, cursor: int) -> bool:
    """The run's newest settled event is terminal: nothing more will come (until a retry, a new stream)."""
    newest = Event.objects.filter(run_id=run_id, id__lte=cursor).order_by("-id").values_list("type", flat=True)
    return newest.first() in TERMINAL_RUN_EVENTS
