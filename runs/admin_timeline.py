"""The run page's timeline: a Gantt-like chart of a run's step executions, computed from their rows.

A row is one step in one scope (a loop iteration or a fork-join branch has a row of its own, its
body's steps rows under it); a row's bars are its tries, of every attempt of the run. Before each bar
a lighter segment shows the wait: since the previous try of the row ended (a retry's delay), or for
a row's first try since the step before it in its chain ended (or since the try was created, when
nothing ran before). Positions are percentages of the run's span, so the page draws it with plain
HTML and CSS, no script.

Everything here reads dicts (`StepExecution.objects.values(*TIMELINE_FIELDS)`), one query per page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.admin_display import duration_text
from runs.choices import ACTIVE_STEP, STARTED_STEP, StepStatus
from runs.models import span_ms
from runs.plan import BRANCH, ITERATION, SLOT_TYPES

TIMELINE_FIELDS = (
    "id",
    "parent_id",
    "step_id",
    "step_type",
    "scope",
    "status",
    "attempt",
    "try_number",
    "iteration",
    "branch",
    "created_at",
    "started_at",
    "completed_at",
    "duration_ms",
)
MAX_ROWS = 300  # a loop of thousands of iterations: the rest are on the step executions list
TICKS = 5
# A step's colour in the graph when it ran in several scopes (loop iterations): the most telling one.
GRAPH_PRIORITY = ("FAILED", "INPUT_REQUIRED", "RUNNING", "PENDING", "CANCELLED", "COMPLETED", "SKIPPED")


@dataclass
class Bar:
    status: str
    attempt: int
    try_number: int
    left: float  # % of the span
    width: float
    wait_left: float
    wait_width: float
    duration_ms: int | None
    wait_ms: int | None
    title: str = ""


@dataclass
class Row:
    key: tuple[str, str]  # (scope, step_id)
    label: str
    step_type: str
    depth: int
    bars: list[Bar] = field(default_factory=list)
    status: str = ""
    tries: int = 0
    duration_ms: int | None = None  # the row's latest try
    wait_ms: int | None = None  # before the row's first try started


@dataclass
class Timeline:
    rows: list[Row]
    total_rows: int
    start: datetime | None
    end: datetime | None
    span_ms: int
    ticks: list[tuple[float, str]]  # (% from the left, "+1.2 s")

    @property
    def hidden_rows(self) -> int:
        return self.total_rows - len(self.rows)


def _label(execution: dict) -> str:
    if execution["step_type"] == ITERATION:
        return f"{execution['step_id']} [{execution['iteration']}]"
    if execution["step_type"] == BRANCH:
        return f"{execution['step_id']}: {execution['branch']}"
    return execution["step_id"]


def _ordered_rows(executions: list[dict]) -> list[tuple[tuple[str, str], list[dict], int]]:
    """(row key, its tries in order, depth), depth-first: a block's slots under it, each slot's steps
    under the slot, siblings in the order they were first created."""
    tries: dict[tuple[str, str], list[dict]] = {}
    row_of: dict = {}
    for execution in executions:  # ordered by created_at, id
        key = (execution["scope"], execution["step_id"])
        tries.setdefault(key, []).append(execution)
        row_of[execution["id"]] = key
    children: dict[tuple[str, str] | None, list[tuple[str, str]]] = {}
    for key, row_tries in tries.items():
        parent = row_of.get(row_tries[0]["parent_id"])
        children.setdefault(parent, []).append(key)
    ordered, stack = [], [(key, 0) for key in reversed(children.get(None, []))]
    seen = set()
    while stack:
        key, depth = stack.pop()
        if key in seen:  # defensive: a parent cycle cannot happen, but must not loop forever
            continue
        seen.add(key)
        ordered.append((key, tries[key], depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(key, [])))
    # Rows whose parent row is missing (not read): shown at the end rather than lost.
    ordered.extend((key, tries[key], 0) for key in tries if key not in seen)
    return ordered


def _axis(executions: list[dict], run_start: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    starts = [e["created_at"] for e in executions] + ([run_start] if run_start else [])
    ends = [e["completed_at"] or e["started_at"] or e["created_at"] for e in executions]
    if any(e["completed_at"] is None and e["status"] in ACTIVE_STEP for e in executions):
        ends.append(now)  # still going: the chart reaches now
    start = min(starts)
    return start, max([*ends, start])


def _offset_text(ms: float) -> str:
    return "0" if ms <= 0 else "+" + duration_text(ms)


def timeline(executions: list[dict], *, run_start: datetime | None = None, now: datetime) -> Timeline:
    if not executions:
        return Timeline([], 0, None, None, 0, [])
    start, end = _axis(executions, run_start, now)
    total = max(span_ms(start, end) or 0, 1)

    def pct(moment: datetime) -> float:
        return round(min(max((moment - start).total_seconds() * 1000 / total * 100, 0.0), 100.0), 3)

    ordered = _ordered_rows(executions)
    rows: list[Row] = []
    chain_end: dict = {}  # (parent row, depth) -> when the previous sibling's last try ended
    for key, row_tries, depth in ordered[:MAX_ROWS]:
        first = row_tries[0]
        row = Row(key, _label(first), first["step_type"], depth, tries=len(row_tries))
        sibling_key = (row_tries[0]["parent_id"], depth)
        previous_end = chain_end.get(sibling_key)
        for execution in row_tries:
            began = execution["started_at"]
            finished = execution["completed_at"] or (now if execution["status"] in STARTED_STEP else None)
            waited_from = previous_end if previous_end and previous_end <= (began or now) else execution["created_at"]
            wait_until = began or (now if execution["status"] == StepStatus.PENDING else waited_from)
            wait_ms = span_ms(waited_from, wait_until)
            left = pct(began) if began else pct(wait_until)
            width = max(pct(finished) - left, 0.0) if began and finished else 0.0
            bar = Bar(
                status=execution["status"],
                attempt=execution["attempt"],
                try_number=execution["try_number"],
                left=left,
                width=width,
                wait_left=pct(waited_from),
                wait_width=max(left - pct(waited_from), 0.0),
                duration_ms=execution["duration_ms"] if execution["completed_at"] else span_ms(began, finished),
                wait_ms=wait_ms,
            )
            bar.title = (
                f"{row.label} attempt {bar.attempt} try {bar.try_number}: {bar.status}, "
                f"ran {duration_text(bar.duration_ms)}, waited {duration_text(wait_ms)}"
            )
            row.bars.append(bar)
            previous_end = execution["completed_at"] or previous_end
        last = row_tries[-1]
        row.status, row.duration_ms = last["status"], row.bars[-1].duration_ms
        row.wait_ms = row.bars[0].wait_ms
        if previous_end:
            chain_end[sibling_key] = previous_end
        rows.append(row)
    ticks = [(round(100 * n / (TICKS - 1), 3), _offset_text(total * n / (TICKS - 1))) for n in range(TICKS)]
    return Timeline(rows, len(ordered), start, end, total, ticks)


def graph_statuses(executions: list[dict]) -> dict[str, str]:
    """step id -> the status its box in the graph shows: per scope the latest try (of the latest
    attempt), then across scopes the most telling (a failed iteration makes the loop body's box red)."""
    latest: dict[tuple[str, str], dict] = {}
    for execution in executions:
        if execution["step_type"] in SLOT_TYPES:  # a slot row carries its block's id
            continue
        key = (execution["scope"], execution["step_id"])
        known = latest.get(key)
        if known is None or (execution["attempt"], execution["try_number"]) >= (known["attempt"], known["try_number"]):
            latest[key] = execution
    rank = {status: number for number, status in enumerate(GRAPH_PRIORITY)}
    shown: dict[str, str] = {}
    for (_, step_id), execution in latest.items():
        status = execution["status"]
        if step_id not in shown or rank.get(status, 99) < rank.get(shown[step_id], 99):
            shown[step_id] = status
    return shown
