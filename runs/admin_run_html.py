"""The run page's two long lists, the timeline's rows and the log lines, written as HTML here rather
than in template loops: hundreds of rows through the template engine took most of a second
(bench/admin_run_page.py). Every value is escaped (format_html); the CSS is runs/static/runs/run_page.css."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from core.admin_display import duration_text, moment_html, status_badge
from runs.admin_timeline import Row, Timeline


def _pct(value: float) -> str:
    return f"{value:.3f}"  # never localized: a CSS length


def _bars(row: Row) -> SafeString:
    parts = []
    for bar in row.bars:
        if bar.wait_width:
            parts.append(
                format_html(
                    '<span class="wf-tl-wait" style="left:{}%;width:{}%"></span>',
                    _pct(bar.wait_left),
                    _pct(bar.wait_width),
                )
            )
        mark = ""
        if bar.try_number > 1 or bar.attempt > 1:
            mark = (f"a{bar.attempt} " if bar.attempt > 1 else "") + f"#{bar.try_number}"
        parts.append(
            format_html(
                '<span class="wf-tl-bar wf-bar-{}" style="left:{}%;width:{}%" title="{}">{}</span>',
                bar.status.lower(),
                _pct(bar.left),
                _pct(bar.width),
                bar.title,
                mark,
            )
        )
    return mark_safe("".join(parts))  # noqa: S308 - each part built by format_html


def _label(row: Row) -> SafeString:
    extra = ""
    if row.step_type != "agent":
        extra += f" {row.step_type}"
    if row.tries > 1:
        extra += f" ×{row.tries}"
    return format_html(
        '<div class="wf-tl-label" style="padding-left:{}em" title="{} {}">{}<span class="wf-scope">{}</span></div>',
        row.depth,
        row.key[0],
        row.key[1],
        row.label,
        extra,
    )


def timeline_rows_html(timeline: Timeline) -> SafeString:
    return format_html_join(
        "\n",
        '<div class="wf-tl-line wf-tl-row wf-row-{}" data-status="{}">{}<div class="wf-tl-track">{}</div>'
        '<div class="wf-tl-num">{}</div><div class="wf-tl-num">{}</div></div>',
        (
            (
                row.status.lower(),
                row.status,
                _label(row),
                _bars(row),
                duration_text(row.duration_ms),
                duration_text(row.wait_ms),
            )
            for row in timeline.rows
        ),
    )


def timeline_ticks_html(timeline: Timeline) -> SafeString:
    return format_html_join(
        "", '<span style="left:{}%">{}</span>', ((_pct(left), text) for left, text in timeline.ticks)
    )


def _log_data(entry) -> SafeString:
    if not entry.data_text:
        return mark_safe("")
    return format_html(
        '<details class="wf-details"><summary>data</summary><pre class="wf-pre">{}</pre></details>', entry.data_text
    )


def log_rows_html(entries) -> SafeString:
    return format_html_join(
        "\n",
        '<tr class="wf-log wf-log-{}" data-level="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
        '<td class="wf-log-message">{}{}</td></tr>',
        (
            (
                entry.level,
                entry.level,
                moment_html(entry.timestamp),
                status_badge(entry.level),
                entry.source,
                entry.step_id or "-",
                entry.message,
                _log_data(entry),
            )
            for entry in entries
        ),
    )
