"""Template filters for the admin's own templates: {{ run.status|badge }}, {{ step.started_at|moment }},
{{ step.duration_ms|duration }} (core/admin_display.py)."""

from django import template

from core.admin_display import duration_text, moment_html, status_badge

register = template.Library()
register.filter("badge", status_badge)
register.filter("moment", moment_html)
register.filter("duration", duration_text)
