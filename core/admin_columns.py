"""List columns shown the platform's way (core/admin_display.py): a status as a coloured badge, a time
to the millisecond with how long ago, a duration readable. Each column still sorts by its field.

    class RunAdmin(ModelAdmin):
        list_display = ("id", "status_shown", "created_shown")
        status_shown = badge_column("status")
        created_shown = moment_column("created_at", "Created")
"""

from django.contrib import admin

from core.admin_display import duration_text, moment_html, status_badge


def _label(field: str, description: str | None) -> str:
    return description or field.replace("_", " ").capitalize()


def badge_column(field: str, description: str | None = None):
    @admin.display(description=_label(field, description), ordering=field)
    def column(self, obj):
        return status_badge(getattr(obj, field))

    return column


def moment_column(field: str, description: str | None = None):
    @admin.display(description=_label(field, description), ordering=field)
    def column(self, obj):
        return moment_html(getattr(obj, field))

    return column


def duration_column(field: str, description: str | None = None):
    @admin.display(description=_label(field, description), ordering=field)
    def column(self, obj):
        return duration_text(getattr(obj, field))

    return column


def flag_badge(value: bool, yes: str, no: str):
    """A boolean read as a status (active / inactive, revoked): the same badges as statuses."""
    return status_badge(yes if value else no)
