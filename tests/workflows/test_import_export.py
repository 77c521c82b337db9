import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from tests.factories import AgentFactory
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

LEGACY = {
    "workflow_id": "wf-001",
    "name": "legacy-flow",
    "version": "1.0",
    "start_step": "a",
    "steps": {
        "a": {"id": "a", "agent_name": "Echo", "input_mapping": {"text": "${workflow.input.text}"}, "next_step": "b"},
        "b": {"id": "b", "agent_name": "Echo", "input_mapping": {"text": "${a.output.text}"}, "next_step": None},
    },
}


@pytest.fixture
def files(tmp_path):
    AgentFactory(name="Echo")

    def write(name, content):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    return write


def run(*args):
    from io import StringIO

    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_import_creates_then_versions_then_leaves_unchanged(files):
    path = files("legacy.json", LEGACY)
    out, error = run("import_workflows", path)
    assert error is None and "created 'legacy-flow' version 1" in out
    workflow = Workflow.objects.get(name="legacy-flow")
    assert workflow.definition["steps"]["a"]["type"] == "agent"
    out, _ = run("import_workflows", path)
    assert "unchanged 'legacy-flow' (version 1)" in out
    changed = {**LEGACY, "description": "second edition"}
    out, _ = run("import_workflows", files("legacy-2.json", changed))
    assert "updated 'legacy-flow' to version 2" in out
    assert AuditEvent.objects.filter(action="workflow.update", user="").count() == 1


def test_bad_files_are_reported_and_do_not_stop_the_others(files):
    broken = {**LEGACY, "name": "broken", "start_step": "zzz"}
    unknown_agent = json.loads(json.dumps({**LEGACY, "name": "ghosts"}))
    unknown_agent["steps"]["b"]["agent_name"] = "Ghost"
    paths = [
        files("bad.json", broken),
        files("notjson.json", "{nope"),
        files("good.json", LEGACY),
        files("ghost.json", unknown_agent),
        "/nonexistent/file.json",
    ]
    out, error = run("import_workflows", *paths)
    assert error is not None and error.returncode == 1
    assert "bad.json: failed" in out and "start_step:" in out
    assert "notjson.json: failed" in out and "not valid JSON" in out
    assert "good.json: created 'legacy-flow' version 1" in out
    assert "ghost.json: failed" in out and "steps.b.agent_name: Unknown agent 'Ghost'" in out
    assert "1 imported, 4 failed" in out
    assert list(Workflow.objects.values_list("name", flat=True)) == ["legacy-flow"]


def test_import_records_the_given_user(files):
    from tests.conftest import make_user

    make_user("importer", None)
    run("import_workflows", files("legacy.json", LEGACY), "--user", "importer")
    assert Workflow.objects.get().created_by == "importer"
    assert AuditEvent.objects.get(action="workflow.create").user == "importer"
    _, error = run("import_workflows", files("legacy.json", LEGACY), "--user", "ghost")
    assert error is not None


def test_export_round_trips(files, tmp_path):
    run("import_workflows", files("legacy.json", LEGACY))
    run("import_workflows", files("legacy2.json", {**LEGACY, "description": "v2"}))
    out, error = run("export_workflow", "legacy-flow")
    assert error is None
    exported = json.loads(out)
    assert exported["version"] == "2" and exported["description"] == "v2"
    assert exported["steps"]["b"]["agent_name"] == "Echo"
    out, _ = run("export_workflow", "legacy-flow", "--version", "1")
    assert json.loads(out)["version"] == "1" and json.loads(out).get("description", "") == ""
    target = tmp_path / "out.json"
    run("export_workflow", "legacy-flow", "--version", "1", "-o", str(target))
    # re-importing an exported file changes nothing but the version it brings back
    out, error = run("import_workflows", str(target))
    assert error is None and "updated 'legacy-flow' to version 3" in out


def test_export_errors():
    _, error = run("export_workflow", "nothing")
    assert error is not None and "No workflow named 'nothing'" in str(error)
