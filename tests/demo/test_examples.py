"""Every file in examples/ imports with `import_workflows` and runs to COMPLETED against the demo
agent's skills, with its sample input (in process: the executor decides message by message and the
demo agent's own skill functions answer; tests/e2e runs them through the whole system)."""

import asyncio
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from demo.agent import INSTANT_SKILLS
from demo.setup import DEMO_SKILLS
from runs.choices import RunStatus
from runs.models import StepExecution
from runs.services import run_execute
from tests.factories import AgentFactory
from tests.runs.test_blocks import drive
from tests.runs.test_executor import fresh
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.glob("*.json"))


def demo_answer(task):
    skill = task["agent_name"].removeprefix("demo-")
    function, _ = INSTANT_SKILLS[skill]
    try:
        return asyncio.run(function(task["input_data"])), None
    except Exception as exc:  # noqa: BLE001 - the skill's failure is the agent's error answer
        return None, str(exc)


@pytest.fixture
def imported():
    for skill in DEMO_SKILLS:
        AgentFactory(name=f"demo-{skill}")
    out = StringIO()
    call_command("import_workflows", *map(str, FILES), stdout=out)
    assert f"{len(FILES)} imported, 0 failed" in out.getvalue()
    return out.getvalue()


def test_there_is_an_example_per_step_type_and_a_mixed_one():
    types = set()
    for path in FILES:
        types |= {step.get("type", "agent") for step in json.loads(path.read_text())["steps"].values()}
        assert (EXAMPLES / "inputs" / path.name).is_file(), f"{path.name} needs a sample input"
    assert types == {"agent", "parallel", "conditional", "loop", "fork_join"}
    assert {p.stem for p in FILES} >= {"parallel", "conditional", "loop", "fork_join", "mixed"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_example_runs_to_completion(imported, path):
    name = json.loads(path.read_text())["name"]
    sample = json.loads((EXAMPLES / "inputs" / path.name).read_text())
    run = run_execute(workflow=Workflow.objects.get(name=name), input_data=sample, user=None)
    drive(run, demo_answer)
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert not StepExecution.objects.filter(run=run, status__in=["PENDING", "RUNNING", "FAILED"]).exists()
    expected = {
        "parallel": {"loud": "HELLO MULTI-AGENT WORLD", "words": 3},
        "conditional": {"decision": "then", "text": "A TEXT WITH MORE THAN THREE WORDS"},
        "fork_join": {"loud": ["FORK", "AND", "JOIN"], "plain": 3},
    }.get(path.stem)
    if expected:
        assert {key: run.output_data.get(key) for key in expected} == expected
    if path.stem == "loop":
        assert [item["word"] for item in run.output_data["results"]] == ["ALPHA", "BETA", "GAMMA"]
    if path.stem == "mixed":
        assert run.output_data["branch"] == "then" and len(run.output_data["per_word"]) == 4


def test_the_quick_start_imports_the_examples_and_leaves_them_alone_the_second_time():
    from demo.setup import examples_import

    for skill in DEMO_SKILLS:
        AgentFactory(name=f"demo-{skill}")
    first = examples_import(user=None)
    assert {w.name for w, _ in first} == {json.loads(p.read_text())["name"] for p in FILES}
    assert all(sample for _, sample in first)
    again = examples_import(user=None)
    assert [(w.id, w.version) for w, _ in again] == [(w.id, 1) for w, _ in first]
