"""The admin index as a dashboard (unfold's DASHBOARD_CALLBACK): each section's figures, the filtered
admin list behind every figure, and only the sections whose model the user may view (the model's own
ModelAdmin decides, so the webhooks' admin-role rule holds here too)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from agents.models import Agent
from core.models import OutboxMessage
from dashboard import queries
from runs.choices import RunStatus, StepStatus
from runs.models import Run, StepExecution
from webhooks.choices import DeliveryStatus
from webhooks.models import Delivery

# The chart's stacking order and colours (the badges' tones, core/admin_display.py).
STATUSES = [
    (RunStatus.COMPLETED, "#22c55e"),
    (RunStatus.FAILED, "#ef4444"),
    (RunStatus.CANCELLED, "#9ca3af"),
    (RunStatus.RUNNING, "#3b82f6"),
    (RunStatus.PENDING, "#f59e0b"),
    (RunStatus.PAUSED, "#a855f7"),
]
WINDOWS = {"24h": "last 24 h", "7d": "last 7 d"}
CHART_OPTIONS = {
    "animation": False,
    "responsive": True,
    "maintainAspectRatio": False,
    "datasets": {"bar": {"maxBarThickness": 22, "borderRadius": 3}},
    "plugins": {"legend": {"display": True, "position": "bottom", "labels": {"boxWidth": 10, "boxHeight": 10}}},
    "scales": {
        "x": {"stacked": True, "grid": {"display": False}, "ticks": {"maxRotation": 0, "autoSkip": True}},
        "y": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}},
    },
}


def changelist(model, **params) -> str:
    """The admin list of `model` filtered by `params` (lookups its ModelAdmin accepts)."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def since(moment) -> str:
    return moment.isoformat()  # urlencode writes the "+" of "+00:00" as %2B


def may_view(request, model) -> bool:
    model_admin = admin.site.get_model_admin(model) if admin.site.is_registered(model) else None
    return bool(model_admin and model_admin.has_view_permission(request))


def chart(buckets: dict, starts: list, label) -> str:
    """unfold's bar chart data (Chart.js): one stacked dataset per status over the given buckets."""
    data = {
        "labels": [label(start) for start in starts],
        "datasets": [
            {
                "label": status.label,
                "data": [buckets.get((start, status), 0) for start in starts],
                "backgroundColor": colour,
                "stack": "runs",
            }
            for status, colour in STATUSES
        ],
    }
    return json.dumps(data)


def runs_section(windows: queries.Windows, counts: dict) -> dict:
    starts = {"24h": windows.day, "7d": windows.week}
    table = []
    for status, colour in STATUSES:
        cells = {
            key: {
                "n": counts["day" if key == "24h" else "week"].get(status, 0),
                "href": changelist(Run, status__exact=status, created_at__gte=since(start)),
            }
            for key, start in starts.items()
        }
        table.append({"status": status, "colour": colour, **cells})
    totals = {}
    for key, start in starts.items():
        by_status = counts["day" if key == "24h" else "week"]
        rate = queries.failure_rate(by_status)
        totals[key] = {
            "n": sum(by_status.values()),
            "href": changelist(Run, created_at__gte=since(start)),
            "failed": by_status.get(RunStatus.FAILED, 0),
            "failed_href": changelist(Run, status__exact=RunStatus.FAILED, created_at__gte=since(start)),
            "ended": by_status.get(RunStatus.COMPLETED, 0) + by_status.get(RunStatus.FAILED, 0),
            "rate": None if rate is None else round(rate * 100, 1),
        }
    return {
        "table": table,
        "totals": totals,
        "hourly": chart(counts["hourly"], windows.hours(), lambda start: start.strftime("%H:00")),
        "daily": chart(counts["daily"], windows.days(), lambda start: start.strftime("%a %d")),
        "options": json.dumps(CHART_OPTIONS),
    }


def steps_section(start, rows: list[dict]) -> list[dict]:
    for row in rows:
        row["href"] = changelist(
            StepExecution,
            run__workflow__id__exact=row["workflow_id"],
            step_id__exact=row["step_id"],
            created_at__gte=since(start),
            duration_ms__isnull="False",
        )
    return rows


def agents_section(start, rows: list[dict]) -> list[dict]:
    for row in rows:
        row["href"] = changelist(StepExecution, agent_name__exact=row["agent_name"], created_at__gte=since(start))
        row["failed_href"] = changelist(
            StepExecution,
            agent_name__exact=row["agent_name"],
            created_at__gte=since(start),
            status__exact=StepStatus.FAILED,
        )
    return rows


def failing_section() -> dict:
    found = queries.failing_agents()
    for row in found["agents"]:
        row["href"] = reverse("admin:agents_agent_change", args=[row["agent"].pk])
    found["href"] = changelist(Agent)
    return found


def outbox_section() -> dict:
    backlog = queries.outbox_backlog()
    backlog["pending_href"] = changelist(OutboxMessage, sent_at__isempty="1", dead_at__isempty="1")
    backlog["dead_href"] = changelist(OutboxMessage, dead_at__isempty="0")
    return backlog


def webhooks_section(start) -> dict:
    backlog = queries.webhook_backlog(start)
    for status in ("pending", "sending", "retrying"):
        backlog[f"{status}_href"] = changelist(Delivery, status__exact=status.upper())
    backlog["failed_href"] = changelist(Delivery, status__exact=DeliveryStatus.FAILED, created_at__gte=since(start))
    return backlog


def dashboard_callback(request, context: dict) -> dict:
    windows = queries.Windows(timezone.now())
    window = request.GET.get("window") if request.GET.get("window") in WINDOWS else "24h"
    start = windows.day if window == "24h" else windows.week
    dashboard = {
        "now": windows.now,
        "window": window,
        "window_label": WINDOWS[window],
        "run_sample": queries.RUN_SAMPLE,
        "windows": [{"key": key, "label": label, "href": f"?window={key}"} for key, label in WINDOWS.items()],
    }
    if may_view(request, Run) or may_view(request, StepExecution):
        counts = queries.run_counts(windows)
    if may_view(request, Run):
        dashboard["runs"] = runs_section(windows, counts)
    if may_view(request, StepExecution):
        slowest, busiest = queries.step_tables(start)
        dashboard["steps"] = steps_section(start, slowest)
        dashboard["agents"] = agents_section(start, busiest)
        dashboard["window_runs"] = sum(counts["day" if window == "24h" else "week"].values())
        dashboard["sampled"] = dashboard["window_runs"] > queries.RUN_SAMPLE
    if may_view(request, Agent):
        dashboard["failing"] = failing_section()
    if may_view(request, OutboxMessage):
        dashboard["outbox"] = outbox_section()
    if may_view(request, Delivery):
        dashboard["webhooks"] = webhooks_section(windows.week)
    context["dashboard"] = dashboard
    context["title"] = "Dashboard"
    return context
