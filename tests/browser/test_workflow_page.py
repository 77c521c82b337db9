"""The workflow page in a real browser: its step graph, the diff of two versions picked in its form,
and the Execute form answering a validation error (bad input, the field's error, fixed, the run's page)."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from runs.models import Run
from tests.browser.conftest import in_thread, shot
from tests.factories import AgentFactory
from workflows.services import workflow_create, workflow_update

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

SCHEMA = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": {"type": "string", "minLength": 3, "description": "The text every step works on."},
        "repeat": {"type": "integer", "minimum": 1, "default": 1, "title": "Repeat"},
        "tone": {"enum": ["plain", "loud"], "default": "plain"},
    },
}


@pytest.fixture
def mixed_workflow(transactional_db):
    """examples/mixed.json (every step type) in three versions; made before the browser starts."""
    for name in ("demo-word_count", "demo-uppercase", "demo-echo"):
        AgentFactory(name=name)
    definition = json.loads((Path(settings.BASE_DIR) / "examples" / "mixed.json").read_text())
    definition["input_schema"] = SCHEMA
    workflow = workflow_create(user=None, definition=definition)
    definition["description"] = "Second version: a longer note."
    definition["steps"]["short-note"]["input_mapping"]["note"] = "only ${count.output.count} word(s), <b>short</b>"
    workflow = workflow_update(workflow=workflow, user=None, definition=definition)
    definition["steps"]["tail"] = {"id": "tail", "agent_name": "demo-echo", "input_mapping": {}, "next_step": None}
    definition["steps"]["done"]["next_step"] = "tail"
    return workflow_update(workflow=workflow, user=None, definition=definition)


def test_the_graph_shows_every_step_and_its_arrows(mixed_workflow, page):
    assert page.goto(f"{page.base}/admin/workflows/workflow/{mixed_workflow.pk}/change/").ok
    graph = page.locator("#workflow-graph svg")
    graph.wait_for()
    steps = set(graph.locator("g.step").evaluate_all("nodes => nodes.map(n => n.dataset.step)"))
    assert steps == set(mixed_workflow.definition["steps"])
    kinds = set(graph.locator("g.edge").evaluate_all("nodes => nodes.map(n => n.getAttribute('class'))"))
    assert {f"edge edge-{kind}" for kind in ("next", "true", "false", "body", "parallel", "branch")} <= kinds
    box = graph.locator("g.step[data-step='per-word'] rect").bounding_box()
    assert box["width"] > 100 and box["height"] > 40  # drawn at its size, not squeezed by the theme
    assert page.locator("#workflow-steps tr[data-step='summaries']").inner_text().count("branch") == 2
    assert not page.locator("#workflow-definition pre").is_visible()  # collapsed until asked for
    shot(page, "workflow-page-graph")
    page.locator("#workflow-definition summary").click()
    assert page.locator("#workflow-definition pre").is_visible()
    page.locator("#workflow-versions").scroll_into_view_if_needed()
    shot(page, "workflow-page-versions")


def test_two_versions_are_picked_and_compared(mixed_workflow, page):
    assert page.goto(f"{page.base}/admin/workflows/workflow/{mixed_workflow.pk}/change/").ok
    page.select_option("#compare-from", "1")
    page.select_option("#compare-to", "3")
    page.click("#compare-submit")
    page.wait_for_url(re.compile(r".*/diff/\?from=1&to=3$"))
    summary = page.locator("#diff-summary").inner_text()
    assert "What changed from v1 to v3" in summary
    assert "tail added" in summary and "short-note changed" in summary and "description" in summary
    added = page.locator("#diff-table tr.wf-diff-add").all_inner_texts()
    assert any('"note": "only ${count.output.count} word(s), <b>short</b>"' in line for line in added)  # as text
    assert page.locator("#diff-table b").count() == 0  # user text never becomes markup
    assert page.locator("#diff-table tr.wf-diff-del").count() >= 2
    shot(page, "workflow-diff")
    page.click("#compare-swap")
    page.wait_for_url(re.compile(r".*/diff/\?from=3&to=1$"))
    assert "tail removed" in page.locator("#diff-summary").inner_text()


def test_the_execute_form_answers_a_validation_error(mixed_workflow, page):
    assert page.goto(f"{page.base}/admin/workflows/workflow/{mixed_workflow.pk}/change/").ok
    page.get_by_role("link", name=re.compile("Execute")).first.click()
    page.wait_for_url(f"{page.base}/admin/runs/run/execute/{mixed_workflow.pk}/")
    assert page.locator("#id_p_repeat").input_value() == "1"  # the schema's default
    page.fill("#id_p_text", "ab")
    page.fill("#id_p_repeat", "zero")
    page.click("#execute-submit")
    page.locator("#errors-p_text").wait_for()
    assert page.locator("#errors-p_text").inner_text() == "'ab' is too short"
    assert page.locator("#errors-p_repeat").inner_text() == "'zero' is not of type 'integer'"
    assert page.locator("#errors-p_tone").count() == 0
    assert page.locator("#id_p_text").input_value() == "ab"  # kept, to be fixed
    shot(page, "workflow-execute-errors")
    assert in_thread(Run.objects.count) == 0
    page.fill("#id_p_text", "three little words")
    page.fill("#id_p_repeat", "2")
    page.select_option("#id_p_tone", label="loud")
    page.click("#execute-submit")
    page.wait_for_url(re.compile(r".*/admin/runs/run/[0-9a-f-]{36}/change/$"))
    run_id = page.url.rstrip("/").split("/")[-2]
    assert page.get_by_text(f"Run {run_id} started from {mixed_workflow.name}").is_visible()
    shot(page, "workflow-execute-run")
    input_data = in_thread(lambda: Run.objects.get(pk=run_id).input_data)
    assert input_data == {"text": "three little words", "repeat": 2, "tone": "loud"}
