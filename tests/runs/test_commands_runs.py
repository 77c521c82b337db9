"""The run commands (execute_workflow, retry_run, cancel_run, runs) through call_command. `--wait` is
followed to the end by feeding the executor fake agent results whenever the command pauses between
two looks at the run, as tests/runs/test_executor.py drives it."""

import io
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from runs.choices import RunStatus
from runs.models import Run
from runs.services import run_cancel, run_execute
from tests.factories import UserFactory
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import fresh, result, start, tasks
from workflows.choices import WorkflowStatus
from workflows.models import Workflow

pytestmark = pytest.mark.django_db
SCHEMA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}


def command(*args) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        err.write(str(exc))
        code = exc.returncode
    return out.getvalue(), err.getvalue(), code


class Driver:
    """Stands in for the command's pause between polls: each pause moves the run one message on."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)  # per step: an output dict, or ("error", message)
        self.pending = None

    def __call__(self, seconds):
        run = Run.objects.latest("created_at")
        if self.pending is None:
            sent = start(run)
        elif not self.outcomes:
            return
        else:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, tuple):
                sent = result(self.pending, error=outcome[1])
            else:
                sent = result(self.pending, outcome)
        found = tasks(sent)
        self.pending = found[0] if found else None


@pytest.fixture
def drive(monkeypatch):
    def install(*outcomes):
        driver = Driver(outcomes)
        monkeypatch.setattr("runs.cli.time.sleep", driver)
        return driver

    return install


def test_execute_prints_the_run_id_and_audits_as_the_api_does():
    workflow = workflow_with_agents("upper", name="shout", input_schema=SCHEMA)
    ops = UserFactory(username="ops")
    out, _, code = command("execute_workflow", "shout", "--input", '{"text": "hi"}', "--user", "ops")
    assert code == 0
    run = Run.objects.get(pk=out.strip())
    assert run.workflow_id == workflow.id and run.status == RunStatus.PENDING and run.input_data == {"text": "hi"}
    assert run.triggered_by == ops.username
    event = AuditEvent.objects.get(action="run.execute", resource_id=str(run.id))
    assert event.user == "ops" and event.input_data == {"text": "hi"}


def test_without_user_the_system_acts(tmp_path):
    workflow_with_agents("upper", name="shout")
    (tmp_path / "in.json").write_text('{"text": "from a file"}')
    out, _, code = command("execute_workflow", "shout", "--input", f"@{tmp_path / 'in.json'}")
    run = Run.objects.get(pk=out.strip())
    assert code == 0 and run.input_data == {"text": "from a file"} and run.triggered_by == ""
    assert AuditEvent.objects.get(action="run.execute", resource_id=str(run.id)).user == ""


def test_input_is_checked_against_the_schema_with_field_errors():
    workflow_with_agents("upper", name="shout", input_schema=SCHEMA)
    out, err, code = command("execute_workflow", "shout", "--input", '{"text": 3}')
    assert code == 4 and out == "" and not Run.objects.exists()
    assert "input_data.text: 3 is not of type 'string'" in err and "input_schema" in err
    _, err, code = command("execute_workflow", "shout", "--input", "{}")
    assert code == 4 and "input_data: 'text' is a required property" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing"], "No workflow named 'missing'"),
        (["shout", "--input", "{not json"], "--input: not valid JSON"),
        (["shout", "--input", "[1]"], "--input must be a JSON object"),
        (["shout", "--input", "@/nonexistent/in.json"], "cannot read /nonexistent/in.json"),
        (["shout", "--user", "nobody"], "No active user 'nobody'"),
        (["shout", "--wait", "--timeout", "0"], "--timeout must be more than 0"),
    ],
)
def test_execute_errors_create_no_run(args, message):
    workflow_with_agents("upper", name="shout")
    _, err, code = command("execute_workflow", *args)
    assert code == 4 and message in err and not Run.objects.exists()


def test_an_inactive_workflow_is_refused_as_the_api_refuses_it():
    workflow = workflow_with_agents("upper", name="shout")
    Workflow.objects.filter(pk=workflow.pk).update(status=WorkflowStatus.INACTIVE)
    _, err, code = command("execute_workflow", str(workflow.id))  # by id, too
    assert code == 4 and "No run was created: Workflow 'shout' is inactive" in err and not Run.objects.exists()


def test_wait_prints_each_step_then_the_output(drive):
    workflow_with_agents("upper", "count", name="shout")
    drive({"text": "HI THERE"}, {"count": 2, "text": "2"})
    out, err, code = command("execute_workflow", "shout", "--input", '{"text": "hi there"}', "--wait")
    lines = out.splitlines()
    run = Run.objects.get()
    assert code == 0, err
    assert lines[0] == str(run.id)
    steps = [line for line in lines if re.fullmatch(r"  s\d: COMPLETED in \d+(\.\d)?m?s", line)]
    assert [line.split(":")[0] for line in steps] == ["  s1", "  s2"]  # in the order they finished
    assert any(line.startswith(f"Run {run.id} COMPLETED in ") for line in lines)
    assert json.loads(out[out.index("{") :]) == {"count": 2, "text": "2"}


def test_wait_exits_1_when_the_run_fails(drive):
    workflow_with_agents("upper", "count", name="shout")
    drive({"text": "A"}, ("error", "Agent returned HTTP 500"))
    out, err, code = command("execute_workflow", "shout", "--input", '{"text": "a"}', "--wait")
    assert code == 1
    assert re.search(r"^  s2: FAILED in \S+  Agent returned HTTP 500$", out, re.M), out
    assert "FAILED: Step 's2' failed: Agent returned HTTP 500" in err


def test_wait_exits_2_when_the_run_is_cancelled(monkeypatch):
    workflow_with_agents("upper", name="shout")

    def cancel_it(seconds):
        run_cancel(run=Run.objects.get(), user=None, reason="wrong input")

    monkeypatch.setattr("runs.cli.time.sleep", cancel_it)
    _, err, code = command("execute_workflow", "shout", "--wait")
    assert code == 2 and "CANCELLED" in err


def test_wait_exits_3_when_the_timeout_runs_out_and_the_run_goes_on(monkeypatch):
    workflow_with_agents("upper", name="shout")
    monkeypatch.setattr("runs.cli.time.sleep", lambda seconds: None)
    _, err, code = command("execute_workflow", "shout", "--wait", "--timeout", "0.05")
    assert code == 3 and "Timed out after 0.05 s" in err and "still PENDING" in err
    assert Run.objects.get().status == RunStatus.PENDING


def failed_run():
    run = run_execute(workflow=workflow_with_agents("a", name="one"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    result(task, error="boom")
    return fresh(run)


def test_retry_run_goes_through_the_service():
    run = failed_run()
    UserFactory(username="ops")
    out, _, code = command("retry_run", str(run.id), "--user", "ops")
    assert code == 0 and out.strip() == f"Run {run.id} is PENDING again (attempt 2)."
    assert fresh(run).status == RunStatus.PENDING
    assert AuditEvent.objects.get(action="run.retry", resource_id=str(run.id)).user == "ops"
    _, err, code = command("retry_run", str(run.id))
    assert code == 1 and "Only FAILED or CANCELLED runs can be retried; this run is PENDING." in err


def test_cancel_run_passes_the_reason_on():
    run = run_execute(workflow=workflow_with_agents("a", name="one"), input_data={}, user=None)
    out, _, code = command("cancel_run", str(run.id), "--reason", "started by mistake")
    assert code == 0 and out.strip() == f"Run {run.id} CANCELLED: started by mistake"
    assert fresh(run).status == RunStatus.CANCELLED
    assert AuditEvent.objects.filter(action="run.cancel", resource_id=str(run.id)).exists()
    assert run.logs.filter(message="Run cancelled: started by mistake").exists()
    _, err, code = command("cancel_run", str(run.id))
    assert code == 1 and "this run is CANCELLED" in err


@pytest.mark.parametrize("name", ["retry_run", "cancel_run"])
def test_unknown_or_malformed_ids_are_clear_errors(name):
    _, err, code = command(name, "not-an-id")
    assert code == 1 and "Not a run id: 'not-an-id'" in err
    _, err, code = command(name, "00000000-0000-4000-8000-00000000abcd")
    assert code == 1 and "No run 00000000-0000-4000-8000-00000000abcd" in err


def test_cancel_reason_has_the_api_limit():
    _, err, code = command("cancel_run", "00000000-0000-4000-8000-00000000abcd", "--reason", "x" * 1001)
    assert code == 1 and "at most 1000 characters" in err


def test_runs_lists_a_table_with_filters():
    failed = failed_run()
    other = run_execute(workflow=workflow_with_agents("b", name="two"), input_data={}, user=None)
    Run.objects.filter(pk=other.pk).update(created_at=timezone.now() - timedelta(days=3))
    out, _, code = command("runs")
    header, *rows, footer = out.splitlines()
    assert code == 0 and header.split() == ["ID", "WORKFLOW", "STATUS", "CREATED", "(UTC)", "DURATION", "ERROR"]
    assert [row.split()[:3] for row in rows] == [[str(failed.id), "one", "FAILED"], [str(other.id), "two", "PENDING"]]
    assert rows[0].endswith("Step 's1' failed: boom") and rows[1].split()[5] == "-"  # never started: no duration
    assert footer == "2 of 2 run(s)"

    assert str(other.id) not in command("runs", "--since", "1d")[0]
    assert str(other.id) in command("runs", "--since", (timezone.now() - timedelta(days=4)).date().isoformat())[0]
    assert str(failed.id) not in command("runs", "--status", "pending,cancelled")[0]
    assert str(other.id) not in command("runs", "--workflow", "one")[0]
    out = command("runs", "--limit", "1")[0]
    assert str(failed.id) in out and str(other.id) not in out and "1 of 2 run(s) (raise --limit for more)" in out
    assert command("runs", "--status", "FAILED", "--workflow", "two")[0].strip() == "No runs match."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "broken"], "--status: unknown BROKEN"),
        (["--since", "yesterday"], "--since: 'yesterday' is neither"),
        (["--limit", "0"], "--limit must be between 1 and 1000"),
    ],
)
def test_runs_rejects_bad_filters(args, message):
    _, err, code = command("runs", *args)
    assert code == 1 and message in err
