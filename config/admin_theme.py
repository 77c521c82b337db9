"""The admin's theme: django-unfold (maintained, bundles its fonts, htmx, Alpine and Chart.js, so
nothing loads from another host). Its sidebar groups the models by what an operator does with them;
each link shows only to users who may view that model."""

from django.templatetags.static import static
from django.urls import reverse_lazy


def can_view(perm: str):
    """A sidebar permission callback: the user may view the model (superusers may view all)."""

    def allowed(request) -> bool:
        return request.user.has_perm(perm)

    return allowed


def _link(title: str, icon: str, app: str, model: str) -> dict:
    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(f"admin:{app}_{model}_changelist"),
        "permission": can_view(f"{app}.view_{model}"),
    }


NAVIGATION = [
    {
        "title": "Operate",
        "items": [
            {"title": "Dashboard", "icon": "dashboard", "link": reverse_lazy("admin:index")},
            _link("Runs", "play_circle", "runs", "run"),
            _link("Step executions", "stacked_bar_chart", "runs", "stepexecution"),
            _link("Events", "bolt", "runs", "event"),
            _link("Schedules", "schedule", "schedules", "schedule"),
            _link("Schedule firings", "history_toggle_off", "schedules", "schedulefire"),
        ],
    },
    {
        "title": "Design",
        "items": [
            _link("Workflows", "account_tree", "workflows", "workflow"),
            _link("Agents", "smart_toy", "agents", "agent"),
        ],
    },
    {
        "title": "Integrate",
        "items": [
            _link("Webhook endpoints", "webhook", "webhooks", "webhookendpoint"),
            _link("Webhook deliveries", "outbox", "webhooks", "delivery"),
            _link("Outbox (to Kafka)", "move_to_inbox", "core", "outboxmessage"),
        ],
    },
    {
        "title": "Access and record",
        "items": [
            _link("API keys", "key", "core", "apikey"),
            _link("Users", "person", "auth", "user"),
            _link("Groups", "group", "auth", "group"),
            _link("Audit events", "policy", "audit", "auditevent"),
            _link("Idempotency keys", "fingerprint", "runs", "idempotencykey"),
        ],
    },
]

UNFOLD = {
    "SITE_TITLE": "Workflow platform",
    "SITE_HEADER": "Workflow platform",
    "SITE_SUBHEADER": "Multi-agent workflows",
    "SITE_SYMBOL": "hub",
    "SITE_URL": "/",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "BORDER_RADIUS": "6px",
    # Badges and times (core/admin_display.py); a callable, as static() needs the settings loaded.
    "STYLES": [lambda request: static("core/admin.css")],
    # The index is the dashboard (dashboard/sections.py: its figures, each linked to its filtered list).
    "DASHBOARD_CALLBACK": "dashboard.sections.dashboard_callback",
    "SIDEBAR": {"show_search": True, "show_all_applications": True, "navigation": NAVIGATION},
}
