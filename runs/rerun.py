"""`POST /runs/{id}/rerun`: a new run of the original's pinned plan that starts at a chosen top-level step.

The top-level steps before `from_step` on the original's main chain are not run again: their rows
are copied into the new run (COMPLETED, `reused`, output copied, no agent called, no task sent), so
the executor's walk (runs/decider.py, which passes over completed steps) starts at `from_step`, and
`${steps.X.output}` of a reused step resolves exactly as if it had run (runs/context.py reads the
same rows). A reused block is copied with everything that ran inside it (the newest try of each
child, loop iteration and fork-join branch, parents remapped), so a later reference to a parallel
child or a conditional branch step resolves too. Copies write no step events (they did not happen
again); the run log says which steps were reused.
"""

from django.db import transaction

from audit.services import audit_record
from core.errors import Conflict, InvalidInput
from runs.agents_ready import agents_ready_check
from runs.choices import FINISHED_RUN, LogSource, StepStatus
from runs.events import run_event
from runs.models import Run, StepExecution
from runs.plan import Plan
from runs.services import _username, execution_request_enqueue, input_schema_check, lease_until, run_log
from workflows.choices import WorkflowStatus

# Copied from the original's row; the rest (ids, attempt, task and agent-task ids) start fresh.
COPIED = (
    "step_id", "step_type", "agent_name", "scope", "progress", "iteration", "branch", "status",
    "input_data", "output_data", "started_at", "completed_at", "duration_ms", "timeout_ms",
)  # fmt: skip


def _before(plan: Plan, from_step: str) -> list[str]:
    """The main chain's steps before `from_step`, in order."""
    before, step_id = [], plan.start
    while step_id and step_id != from_step:
        before.append(step_id)
        step_id = plan.next.get(step_id)
    return before


def _latest(run: Run) -> dict[tuple[str, str], StepExecution]:
    """The newest try of every place (scope, step id) of the run, of any attempt."""
    latest: dict[tuple[str, str], StepExecution] = {}
    for row in run.steps.order_by("attempt", "try_number"):
        latest[(row.scope, row.step_id)] = row
    return latest


def _checked_from_step(plan: Plan, from_step, latest) -> list[str]:
    if from_step is None:
        return []
    if from_step not in plan.steps:
        raise InvalidInput.one("from_step", f"Step {from_step!r} is not in the run's workflow.", "unknown")
    if plan.place[from_step].owner is not None:
        raise InvalidInput.one("from_step", f"Step {from_step!r} is inside a block; name a top-level step.")
    if ("", from_step) not in latest:
        raise InvalidInput.one("from_step", f"The original run never reached step {from_step!r}.", "not_reached")
    before = _before(plan, from_step)
    for step_id in before:  # reached from_step, so these completed; a retry could not have undone that
        row = latest.get(("", step_id))
        if row is None or row.status != StepStatus.COMPLETED:
            raise InvalidInput.one("from_step", f"Step {step_id!r} before it did not complete.", "not_reached")
    return before


def _copies(run: Run, reused: list[str], latest) -> list[StepExecution]:
    """The reused steps' rows and everything below them, parents first. A row's parent is found by
    place: after a retry the parent's newest try may be another row than the one it ran under."""
    places = run.steps.values_list("id", "scope", "step_id")
    place_of = {row_id: (scope, step_id) for row_id, scope, step_id in places}

    def ancestors(row) -> list[StepExecution]:
        chain = []
        while row.parent_id is not None:
            row = latest[place_of[row.parent_id]]
            chain.append(row)
        return chain

    wanted, chosen = set(reused), []
    for row in latest.values():
        above = ancestors(row)
        root = above[-1] if above else row
        if root.scope == "" and root.parent_id is None and root.step_id in wanted:
            chosen.append((len(above), row))
    copies: dict[tuple[str, str], StepExecution] = {}
    for _, row in sorted(chosen, key=lambda item: item[0]):
        copy = StepExecution(**{name: getattr(row, name) for name in COPIED}, reused=True, attempt=1, try_number=1)
        copy.parent = copies[place_of[row.parent_id]] if row.parent_id else None
        copies[(row.scope, row.step_id)] = copy
    return list(copies.values())


def run_rerun(run: Run, *, user, from_step: str | None = None, input_data: dict | None = None) -> Run:
    """Creates a new PENDING run (`rerun_of` = `run`) of the same pinned plan, starting at `from_step`
    (default: the start step) with `input_data` (default: the original's input)."""
    original = run
    if original.status not in FINISHED_RUN:
        raise Conflict(f"Only a finished run can be rerun; this run is {original.status}.")
    workflow = original.workflow
    if workflow.status == WorkflowStatus.DELETED:
        raise Conflict(f"Workflow {workflow.name!r} was deleted; its runs cannot be rerun.")
    if workflow.status == WorkflowStatus.INACTIVE:
        raise Conflict(f"Workflow {workflow.name!r} is inactive; activate it to run it.")
    plan = Plan.of(original.plan)
    latest = _latest(original)
    reused = _checked_from_step(plan, from_step, latest)
    start = from_step or plan.start
    agents_ready_check({**original.plan, "start_step": start}, workflow_name=workflow.name)
    input_data = original.input_data if input_data is None else input_data
    input_schema_check(original.plan.get("input_schema"), input_data)
    with transaction.atomic():
        new = Run.objects.create(
            workflow=workflow,
            workflow_name=original.workflow_name,
            workflow_version=original.workflow_version,
            plan=original.plan,
            input_data=input_data,
            triggered_by=_username(user),
            lease_expires_at=lease_until(),
            rerun_of=original,
        )
        rows = _copies(original, reused, latest)
        for row in rows:
            row.run = new
        StepExecution.objects.bulk_create(rows)
        detail = f", reusing {', '.join(reused)}" if reused else ""
        run_log(new, f"Rerun of run {original.id} from step {start!r}{detail}", source=LogSource.API)
        run_event(new)  # run.pending
        audit_record(
            user=user,
            action="run.rerun",
            resource_type="run",
            resource_id=new.pk,
            changes={"rerun_of": [None, str(original.pk)], "from_step": [None, start]},
            input_data=input_data,
        )
        execution_request_enqueue(new)
    return new
