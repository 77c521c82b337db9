"""How the admin shows statuses and times, the same on every page: a status is a coloured badge
(the tone says good, bad, busy, waiting or over), a time is written to the millisecond in UTC with
how long ago it was ("3 s ago"), a duration in ms or s."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

# Every status of every model, by what an operator should read into it.
TONES = {
    "success": {"COMPLETED", "SUCCEEDED", "active", "closed", "healthy", "ok", "sent"},
    "danger": {"FAILED", "dead", "open", "unhealthy", "error"},
    "info": {"RUNNING", "SENDING", "half_open", "info"},
    "warning": {"PENDING", "RETRYING", "PAUSED", "INPUT_REQUIRED", "warning", "inactive"},
    "neutral": {"CANCELLED", "SKIPPED", "deleted", "debug", "revoked", "expired"},
}
TONE_OF = {status.lower(): tone for tone, statuses in TONES.items() for status in statuses}


def tone(status) -> str:
    return TONE_OF.get(str(status).lower(), "neutral")


def status_badge(status) -> SafeString:
    if status in (None, ""):
        return format_html('<span class="wf-empty">{}</span>', "-")
    return format_html('<span class="wf-badge wf-tone-{}">{}</span>', tone(status), str(status).replace("_", " "))


def ago(moment: datetime, now: datetime | None = None) -> str:
    """'3 s ago', '5 min ago', '2 h ago', '4 d ago'; 'in 10 s' for a time still to come."""
    seconds = ((now or timezone.now()) - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size or unit == "s":
            amount = int(seconds // size)
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    raise AssertionError("unreachable")


def exact(moment: datetime) -> str:
    """2026-12-02 05:37:01.123 UTC: to the millisecond, always UTC (the API's and the logs' zone)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d} UTC"


def moment_html(moment: datetime | None) -> SafeString:
    if moment is None:
        return format_html('<span class="wf-empty">{}</span>', "-")
    return format_html(
        '<time class="wf-time" datetime="{}" title="{}">{}</time> <span class="wf-ago">{}</span>',
        moment.isoformat(),
        ago(moment),
        exact(moment),
        ago(moment),
    )


def duration_text(value) -> str:
    """A duration given in ms (int) or as a timedelta: '850 ms', '12.4 s', '3 min 5 s'."""
    if value is None:
        return "-"
    ms = value.total_seconds() * 1000 if isinstance(value, timedelta) else float(value)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
