"""The workflow page's versions and the diff between any two of them: a line diff of the pretty JSON
(added and removed lines marked, every text escaped) and what changed step by step."""

import json
import re
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentFactory
from workflows.admin_diff import line_rows, pretty_lines, step_changes
from workflows.services import workflow_create, workflow_update

pytestmark = pytest.mark.django_db


def definition(**changes) -> dict:
    steps = {
        "a": {"id": "a", "agent_name": "A", "input_mapping": {"text": "${workflow.input.text}"}, "next_step": "b"},
        "b": {"id": "b", "agent_name": "A", "input_mapping": {"text": "${a.output.text}"}, "next_step": None},
    }
    body = {"name": "diffed", "description": "first", "start_step": "a", "steps": steps}
    for key, value in changes.items():
        body[key] = value
    return body


@pytest.fixture
def versions():
    """v1; v2 a new description; v3 a step added (c) and one changed (b's agent and mapping)."""
    AgentFactory(name="A")
    AgentFactory(name="B")
    workflow = workflow_create(user=None, definition=definition())
    workflow = workflow_update(workflow=workflow, user=None, definition=definition(description="second"))
    steps = definition()["steps"]
    steps["b"] |= {"agent_name": "B", "input_mapping": {"text": "<b>${a.output.text}</b>"}, "next_step": "c"}
    steps["c"] = {"id": "c", "agent_name": "A", "input_mapping": {"x": "<script>alert(1)</script>"}, "next_step": None}
    return workflow_update(workflow=workflow, user=None, definition=definition(description="second", steps=steps))


def diff_page(staff, workflow, query: str = "") -> str:
    response = staff.get(f"/admin/workflows/workflow/{workflow.pk}/diff/{query}")
    assert response.status_code == 200
    return response.content.decode()


def marked(html: str, kind: str) -> list[str]:
    """The text of the diff's lines of one kind (add, del, same), unescaped."""
    found = re.findall(rf'<tr class="wf-diff-{kind}">(?:<td[^>]*>.*?</td>){{3}}<td>(.*?)</td></tr>', html, re.S)
    return [unescape(text) for text in found]


def test_any_two_versions_are_compared_line_by_line(staff, versions):
    html = diff_page(staff, versions, "?from=1&to=3")
    assert "What changed from v1 to v3" in html
    added, removed = marked(html, "add"), marked(html, "del")
    assert '  "description": "second",' in added and '  "description": "first",' in removed
    assert '      "agent_name": "B",' in added and '      "agent_name": "A",' in removed
    assert '        "x": "<script>alert(1)</script>"' in added  # shown as text...
    assert "<script>alert(1)</script>" not in html and "<b>${a" not in html  # ...never as markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Step by step: b's old lines are matched with b's new ones, and all of c is new.
    assert added[added.index('    "c": {') :][:4] == [
        '    "c": {',
        '      "id": "c",',
        '      "type": "agent",',
        '      "agent_name": "A",',
    ]
    counts = re.search(r'wf-stat-add">\+(\d+)</span> <span class="wf-stat-del">&minus;(\d+)', html).groups()
    assert tuple(map(int, counts)) == (len(added), len(removed))
    # Only the changed lines and their context are listed; the rest is folded into gaps.
    assert marked(html, "same") and len(marked(html, "same")) < 30


def test_the_older_version_can_be_on_either_side_and_the_default_is_the_latest_two(staff, versions):
    backwards = diff_page(staff, versions, "?from=3&to=1")
    forwards = diff_page(staff, versions, "?from=1&to=3")
    assert "What changed from v3 to v1" in backwards
    assert '    "c": {' in marked(backwards, "del") and '    "c": {' in marked(forwards, "add")
    assert '  "description": "first",' in marked(backwards, "add")
    assert '  "description": "second",' in marked(backwards, "del")
    latest = diff_page(staff, versions)
    assert "What changed from v2 to v3" in latest
    assert not any("description" in line for line in marked(latest, "add"))  # v2 -> v3 kept the description
    assert 'href="?from=3&amp;to=2"' in latest  # the swap link
    same = diff_page(staff, versions, "?from=2&to=2")
    assert "These are the same version." in same and "The two definitions are identical." in same


def test_what_changed_is_listed_step_by_step(staff, versions):
    html = diff_page(staff, versions, "?from=1&to=3")
    summary = html[html.index('id="diff-summary"') : html.index('id="diff-lines"')]
    assert 'step <code>c</code> <span class="wf-new">added</span>' in summary
    assert "step <code>b</code> changed:" in summary
    changed_b = summary[summary.index("step <code>b</code> changed:") :]
    assert '<code>agent_name</code>: <span class="wf-old">&quot;A&quot;</span>' in changed_b
    assert "<code>next_step</code>" in changed_b and "<code>input_mapping</code>" in changed_b
    assert "step <code>a</code>" not in summary  # unchanged
    assert "field <code>description</code>" in summary
    found = step_changes(versions.versions.get(version=3).definition, versions.versions.get(version=1).definition)
    assert (found["added"], found["removed"], [item["step"] for item in found["changed"]]) == ([], ["c"], ["b"])


def test_a_version_that_does_not_exist_is_a_form_error_not_a_crash(staff, versions):
    html = diff_page(staff, versions, "?from=9&to=1")
    assert "Select a valid choice" in html and "What changed" not in html
    assert diff_page(staff, versions, "?from=x&to=").count("Select a valid choice") >= 1


def test_the_workflow_page_lists_the_versions_with_links_to_their_diffs(staff, versions):
    html = staff.get(f"/admin/workflows/workflow/{versions.pk}/change/").content.decode()
    history = html[html.index('id="workflow-versions"') :]
    assert re.findall(r'<tr data-version="(\d+)">', history) == ["3", "2", "1"]
    assert f"/admin/workflows/workflow/{versions.pk}/diff/?from=2&amp;to=3" in history
    assert "1 step(s) added, 1 step(s) changed" in history and "first version" in history
    form = history[history.index('<form method="get"') : history.index("</form>")]
    assert f'action="/admin/workflows/workflow/{versions.pk}/diff/"' in form
    assert re.findall(r'<option value="(\d+)"', form) == ["3", "2", "1"] * 2
    assert '<option value="2" selected>' in form and '<option value="3" selected>' in form
    assert "current" in history[: history.index('<tr data-version="2">')]


def test_a_user_without_view_permission_cannot_see_a_diff(client, versions, django_user_model):
    django_user_model.objects.create_user("nobody", password="pw-123456-long", is_staff=True)
    client.login(username="nobody", password="pw-123456-long")
    assert client.get(f"/admin/workflows/workflow/{versions.pk}/diff/").status_code == 403


def test_line_rows_number_both_sides_and_fold_long_unchanged_runs():
    before = [f"line {n}" for n in range(20)]
    after = before[:10] + ["new"] + before[11:]
    rows = line_rows(before, after, context=2)
    assert rows[0] == {"kind": "gap", "skipped": 8}
    assert [row["kind"] for row in rows[1:-1]] == ["same", "same", "del", "add", "same", "same"]
    assert rows[3] == {"kind": "del", "old": 11, "new": "", "text": "line 10"}
    assert rows[4] == {"kind": "add", "old": "", "new": 11, "text": "new"}
    assert rows[-1] == {"kind": "gap", "skipped": 7}
    assert line_rows(before, before) == []


def test_steps_keep_one_order_on_both_sides_so_a_moved_step_is_no_change():
    one = definition()
    two = definition()
    two["steps"] = dict(reversed(two["steps"].items()))  # as a database may keep the keys
    old, new = pretty_lines(one, two)
    assert old == new


def test_the_rows_rebuild_both_sides_whatever_was_added_removed_or_moved():
    mixed = json.loads((Path(settings.BASE_DIR) / "examples" / "mixed.json").read_text())
    other = json.loads(json.dumps(mixed))
    del other["steps"]["short-note"]
    other["steps"]["many-words"]["if_false_step"] = None
    other["steps"]["extra"] = {"id": "extra", "agent_name": "demo-echo", "next_step": None}
    other["steps"]["done"]["next_step"] = "extra"
    other["workflow_id"] = "after the steps"
    for before, after in ((mixed, other), (other, mixed)):
        old, new = pretty_lines(before, after)
        rows = line_rows(old, new, context=10_000)
        assert [row["text"] for row in rows if row["kind"] in ("same", "del")] == old
        assert [row["text"] for row in rows if row["kind"] in ("same", "add")] == new
        assert [row["old"] for row in rows if row["kind"] != "add"] == list(range(1, len(old) + 1))
        assert [row["new"] for row in rows if row["kind"] != "del"] == list(range(1, len(new) + 1))


def test_the_page_and_the_diff_make_as_many_queries_for_thirty_versions_as_for_two(staff, versions):
    def counted(path: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(path).status_code == 200
        return len(queries)

    pages = (f"/admin/workflows/workflow/{versions.pk}/change/", f"/admin/workflows/workflow/{versions.pk}/diff/")
    [counted(path) for path in pages]  # the first fills the content-type cache
    few = [counted(path) for path in pages]
    workflow = versions
    for number in range(30):
        workflow = workflow_update(workflow=workflow, user=None, definition=definition(description=f"v{number}"))
    assert [counted(path) for path in pages] == few
    html = staff.get(pages[0]).content.decode()
    assert len(re.findall(r'<tr data-version="', html)) == 25 and "compare any two above" in html
