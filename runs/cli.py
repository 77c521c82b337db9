"""What the run commands (execute_workflow, retry_run, cancel_run, runs) share: finding a run, reading
`--since`, showing durations, and following a run to its end."""

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from runs.choices import ACTIVE_STEP, FINISHED_RUN
from runs.models import Run, StepExecution

_SINCE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def run_get(value: str) -> Run:
    try:
        run_id = uuid.UUID(value)
    except ValueError:
        raise CommandError(f"Not a run id: {value!r}") from None
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        raise CommandError(f"No run {value}")
    return run


def since_parse(value: str, *, now: datetime | None = None) -> datetime:
    """`1d`, `12h`, `30m` back from now, or an ISO date or date-time (UTC when it has no offset)."""
    match = _SINCE.match(value.strip())
    if match:
        return (now or timezone.now()) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    moment = parse_datetime(value)
    if moment is None and parse_date(value) is not None:
        moment = datetime.combine(parse_date(value), datetime.min.time())
    if moment is None:
        raise CommandError(f"--since: {value!r} is neither 1d / 12h / 30m nor an ISO date (2026-11-26T09:00)")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def duration_text(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "-"
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def run_duration_ms(run: Run, *, now: datetime | None = None) -> int | None:
    """From start to end; a run still going counts up to now."""
    if run.started_at is None:
        return None
    end = run.completed_at or now or timezone.now()
    return int((end - run.started_at).total_seconds() * 1000)


def step_line(step: StepExecution) -> str:
    where = f" [{step.scope}]" if step.scope else ""
    retry = f" try {step.try_number}" if step.try_number > 1 else ""
    attempt = f" attempt {step.attempt}" if step.attempt > 1 else ""
    error = f"  {snippet(step.error_message, 120)}" if step.error_message else ""
    kind = "" if step.step_type == "agent" else f" ({step.step_type})"
    return f"  {step.step_id}{kind}{where}{attempt}{retry}: {step.status} in {duration_text(step.duration_ms)}{error}"


def snippet(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_follow(run: Run, *, timeout: float, write: Callable[[str], None], interval: float = 0.5) -> tuple[Run, bool]:
    """Prints each step execution of `run` as it finishes, until the run ends or `timeout` seconds pass.
    Returns the run as last read and whether it ended. Reads only: the run goes on after a timeout."""
    deadline = time.monotonic() + timeout
    shown: set = set()
    while True:
        run = Run.objects.get(pk=run.pk)
        finished = (
            StepExecution.objects.filter(run=run)
            .exclude(status__in=ACTIVE_STEP)
            .exclude(pk__in=shown)
            .order_by("completed_at", "created_at", "id")
        )
        for step in finished:
            shown.add(step.pk)
            write(step_line(step))
        if run.status in FINISHED_RUN:
            return run, True
        if time.monotonic() >= deadline:
            return run, False
        time.sleep(interval)
