"""What a run's admin page shows besides its fields: the step graph coloured by status, the timeline,
the step executions (input and output pretty-printed) and the logs, filtered by query parameters
(`log_level`, `log_step`, `log_page`, `step_status`, `step_page`) so the page works without script.

The number of queries is the same whatever the run's size: one read of the timeline's columns, one
page of step executions, one page of logs (each with its count), the log's step ids. Pages are capped
(PAGE_STEPS, PAGE_LOGS); the links keep the other parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from runs.admin_actions import run_actions_context
from runs.admin_respond import answer_link, question
from runs.admin_run_html import log_rows_html, timeline_rows_html, timeline_ticks_html
from runs.admin_timeline import TIMELINE_FIELDS, graph_statuses, timeline
from runs.choices import ACTIVE_RUN, LogLevel, RunStatus, StepStatus
from runs.models import Run, RunLog, StepExecution
from workflows.graph import workflow_svg

PAGE_STEPS = 50
PAGE_LOGS = 200
MAX_JSON_CHARS = 20_000  # a huge output is cut on the page (the API has it whole)
POLL_SECONDS = 3
STEP_FIELDS = (
    "id",
    "step_id",
    "step_type",
    "scope",
    "agent_name",
    "status",
    "attempt",
    "try_number",
    "started_at",
    "completed_at",
    "duration_ms",
    "error_message",
    "input_data",
    "output_data",
    "input_request",
    "reused",
)


def pretty_json(value) -> str:
    if value is None:
        return ""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_JSON_CHARS:
        return text[:MAX_JSON_CHARS] + f"\n… cut: {len(text) - MAX_JSON_CHARS} more characters (see the API)"
    return text


def run_is_live(run: Run) -> bool:
    """Worth refreshing: it may still change by itself (a paused run changes only when someone acts)."""
    return run.status in ACTIVE_RUN


@dataclass
class Filters:
    log_level: str
    log_step: str
    log_page: int
    step_status: str
    step_page: int

    @classmethod
    def of(cls, query) -> Filters:
        def number(name):
            value = query.get(name, "")
            return int(value) if value.isdigit() and int(value) > 0 else 1

        level = query.get("log_level", "")
        status = query.get("step_status", "")
        return cls(
            log_level=level if level in LogLevel.values else "",
            log_step=query.get("log_step", "")[:255],
            log_page=number("log_page"),
            step_status=status if status in StepStatus.values else "",
            step_page=number("step_page"),
        )

    def query(self, **changes) -> str:
        """The page's query string with some parameters changed (empty ones left out)."""
        values = {**self.__dict__, **changes}
        values = {key: value for key, value in values.items() if value not in ("", 1, None)}
        return "?" + urlencode(values)


def _page(queryset, number: int, size: int):
    return Paginator(queryset, size).get_page(number)


def _steps(run: Run, filters: Filters) -> tuple:
    queryset = StepExecution.objects.filter(run_id=run.pk).only(*STEP_FIELDS).order_by("created_at", "id")
    if filters.step_status:
        queryset = queryset.filter(status=filters.step_status)
    page = _page(queryset, filters.step_page, PAGE_STEPS)
    shown = []
    for execution in page.object_list:
        shown.append(
            {
                "execution": execution,
                "failed": execution.status == StepStatus.FAILED,
                "input": pretty_json(execution.input_data),
                "output": pretty_json(execution.output_data),
                "question": question(execution) if execution.input_request else "",
                "answer_url": answer_link(execution),
                "url": reverse("admin:runs_stepexecution_change", args=[execution.pk]),
            }
        )
    return page, shown


def _logs(run: Run, filters: Filters):
    queryset = RunLog.objects.filter(run_id=run.pk).order_by("timestamp", "id")
    if filters.log_level:
        queryset = queryset.filter(level=filters.log_level)
    if filters.log_step:
        queryset = queryset.filter(step_id=filters.log_step)
    queryset = queryset.only("timestamp", "level", "source", "step_id", "message", "data")
    page = _page(queryset, filters.log_page, PAGE_LOGS)
    page.object_list = list(page.object_list)
    for entry in page.object_list:
        entry.data_text = pretty_json(entry.data) if entry.data else ""
    return page


def _pager(page, filters: Filters, name: str) -> dict:
    """Previous / next links of a page, keeping the other parameters; "#" anchors the section."""
    anchor = "#run-logs" if name == "log_page" else "#run-steps"
    return {
        "previous": filters.query(**{name: page.previous_page_number()}) + anchor if page.has_previous() else "",
        "next": filters.query(**{name: page.next_page_number()}) + anchor if page.has_next() else "",
    }


def _choices(filters: Filters, name: str, values, page_name: str) -> list[dict]:
    """Filter links (one per value, and "all"), each keeping the other filters, back to page 1."""
    current = getattr(filters, name)
    anchor = "#run-logs" if page_name == "log_page" else "#run-steps"
    return [
        {
            "label": value or "all",
            "value": value,
            "active": value == current,
            "url": filters.query(**{name: value, page_name: 1}) + anchor,
        }
        for value in ("", *values)
    ]


def run_page_context(request, run: Run) -> dict:
    filters = Filters.of(request.GET)
    now = timezone.now()
    executions = list(StepExecution.objects.filter(run_id=run.pk).order_by("created_at", "id").values(*TIMELINE_FIELDS))
    statuses = graph_statuses(executions)
    steps_page, steps = _steps(run, filters)
    logs_page = _logs(run, filters)
    # order_by(): without it the model's ordering columns join the DISTINCT (and every row comes back).
    log_steps = sorted(
        step
        for step in RunLog.objects.filter(run_id=run.pk).order_by().values_list("step_id", flat=True).distinct()
        if step
    )
    shown_timeline = timeline(executions, run_start=run.started_at, now=now)
    waiting = [row for row in executions if row["status"] == StepStatus.INPUT_REQUIRED]
    change_url = reverse("admin:runs_run_change", args=[run.pk])
    return {
        "run": run,
        "filters": filters,
        "graph_svg": mark_safe(workflow_svg(run.plan or {}, statuses)),  # noqa: S308 - workflow_svg escapes
        "timeline": shown_timeline,
        "timeline_rows": timeline_rows_html(shown_timeline),
        "timeline_ticks": timeline_ticks_html(shown_timeline),
        "log_rows": log_rows_html(logs_page.object_list),
        "step_count": len(executions),
        "failed_count": sum(1 for row in executions if row["status"] == StepStatus.FAILED),
        "steps": steps,
        "steps_page": steps_page,
        "logs_page": logs_page,
        "log_levels": _choices(filters, "log_level", LogLevel.values, "log_page"),
        "step_statuses": _choices(filters, "step_status", StepStatus.values, "step_page"),
        "logs_pager": _pager(logs_page, filters, "log_page"),
        "steps_pager": _pager(steps_page, filters, "step_page"),
        "log_steps": log_steps,
        "waiting": [
            {"step_id": row["step_id"], "scope": row["scope"], "url": answer_link_of(row["id"])} for row in waiting
        ],
        "run_input_shown": pretty_json(run.input_data),
        "run_output_shown": pretty_json(run.output_data),
        "live": run_is_live(run),
        "poll_seconds": POLL_SECONDS,
        "live_url": reverse("admin:runs_run_live", args=[run.pk]),
        "change_url": change_url,
        "steps_list_url": reverse("admin:runs_stepexecution_changelist") + f"?run__id__exact={run.pk}",
        "cancelled": run.status == RunStatus.CANCELLED or bool(run.cancel_reason),
    }


def run_live_view(model_admin, request, object_id):
    """The page's live part alone, for htmx's polling. Once the run's status differs from the one the
    page shows (`seen`), the whole page is reloaded instead (HX-Refresh), so its buttons match."""
    run = Run.objects.filter(pk=object_id).first()
    if run is None:
        raise Http404("No such run.")
    if not model_admin.has_view_permission(request, run):
        raise PermissionDenied
    if request.GET.get("seen", run.status) != run.status:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    # The buttons' context too: it says whether this user may answer a waiting step.
    context = {**run_actions_context(request, run), **run_page_context(request, run)}
    return TemplateResponse(request, "admin/runs/run/live.html", context)


def answer_link_of(execution_id) -> str:
    return reverse("admin:runs_stepexecution_respond", args=[execution_id])
