from datetime import UTC, datetime, timedelta

from core.admin_display import ago, duration_text, exact, moment_html, status_badge, tone

NOW = datetime(2026, 12, 2, 5, 37, 1, 123456, tzinfo=UTC)


def test_statuses_get_the_tone_an_operator_reads_into_them():
    assert [tone(s) for s in ("COMPLETED", "FAILED", "RUNNING", "PENDING", "CANCELLED", "weird")] == [
        "success",
        "danger",
        "info",
        "warning",
        "neutral",
        "neutral",
    ]
    assert status_badge("INPUT_REQUIRED") == '<span class="wf-badge wf-tone-warning">INPUT REQUIRED</span>'
    assert "&lt;b&gt;" in status_badge("<b>")  # escaped


def test_times_are_exact_to_the_millisecond_with_how_long_ago():
    assert exact(NOW) == "2026-12-02 05:37:01.123 UTC"
    assert ago(NOW - timedelta(seconds=3), NOW) == "3 s ago"
    assert ago(NOW - timedelta(minutes=5, seconds=9), NOW) == "5 min ago"
    assert ago(NOW - timedelta(days=4, hours=1), NOW) == "4 d ago"
    assert ago(NOW + timedelta(seconds=10), NOW) == "in 10 s"
    assert 'datetime="2026-12-02T05:37:01.123456+00:00"' in moment_html(NOW)


def test_durations_read_in_the_unit_that_fits():
    assert [duration_text(v) for v in (None, 12, 1499, 12_400, 185_000, 7_300_000)] == [
        "-",
        "12 ms",
        "1.5 s",
        "12.4 s",
        "3 min 5 s",
        "2 h 1 min",
    ]
    assert duration_text(timedelta(milliseconds=850)) == "850 ms"
