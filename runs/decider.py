"""Deciding what a run does next, from what the database says happened so far.

Nothing is kept in memory between messages: any executor can take any message and a crashed
executor loses nothing. The caller holds the run's row lock. Two directions, one set of rules:

- `resume` (an execution request: start, retry, recovery) walks the plan top-down from
  `start_step`; completed steps (of any attempt) are passed over, so a retried run calls no
  completed step again, inside blocks too.
- `result_record` and the deadline handling start bottom-up from the one step execution that
  changed: its chain goes on, or the block (or loop iteration / fork-join branch) that holds the
  chain is told, and so on upward. Blocks keep their counters on their own row (`progress`), so a
  decision reads a handful of rows whatever the size of the run.

Top-down calls return an Outcome and never call upward; upward calls start only from an event.
Block types live in runs/blocks.py.
"""

import copy
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from agents.choices import AgentStatus
from agents.models import Agent
from agents.policy import retry_delay, retry_policy
from core.db import db_params, placeholders, row_update, rows_insert, storable, the_one, the_row
from core.outbox import outbox_enqueue
from core.versions import kept
from runs import messages
from runs.blocks import Blocks
from runs.choices import (
    ACTIVE_STEP,
    CANCELLABLE_STEP,
    RECORDING_RUN,
    STARTED_STEP,
    LogLevel,
    LogSource,
    RunStatus,
    StepStatus,
)
from runs.context import loop_context, reference_context
from runs.events import step_event
from runs.input import agent_task_remember, input_expire, input_required_record, stale_answer, waiting_refresh
from runs.models import Run, StepExecution
from runs.outcome import WAITING, Outcome
from runs.pause import step_hold
from runs.plan import ITERATION, SLOT_TYPES, Plan
from runs.services import (
    agent_tasks_cancel,
    durations_stamp,
    monitoring_publish,
    run_log,
    run_transition,
    step_transition,
    steps_cancel,
)
from workflows.definition.references import UnresolvedReference, resolve_value

SOURCE = LogSource.EXECUTOR
DUE_SQL = (
    f'SELECT "id" FROM "runs_stepexecution" WHERE "run_id" = %s AND "status" IN ({placeholders(ACTIVE_STEP)})'  # noqa: S608 - fixed
    ' AND "due_at" <= %s AND "attempt" = %s ORDER BY "due_at"'
)


def live_agent(name: str) -> Agent | None:
    """The live agent of that name (names are unique among them): kept per process while the agents
    table is unchanged (core/versions.py), a copy for each caller."""
    agent = kept("agents_agent", ("live", name), lambda: the_one(Agent.objects.live().filter(name=name)))
    return copy.copy(agent) if agent is not None else None


class Decider(Blocks):
    def __init__(self, run: Run):
        self.run = run
        self.plan = Plan.of(run.plan)
        self.by_id: dict = {}
        self.by_place: dict[tuple[str, str], StepExecution | None] = {}
        self.deadlines: list = []
        self.agents: dict[str, Agent | None] = {}
        # Scopes of loop iterations and branches started by this decision in a run's first attempt:
        # nothing can have run in them yet, so looking there would only cost a query.
        self.new_scopes: set[str] = set()

    # -- entry points ----------------------------------------------------------------------------

    def resume(self) -> None:
        """Dispatches what is ready, or finishes the run when its last step is done or a step failed."""
        if self.run.status == RunStatus.RUNNING:
            self.run_finish(self.walk_chain(self.plan.start, scope="", parent=None))

    def result_record(self, execution: StepExecution, result: dict) -> None:
        self.remember(execution)
        if execution.parent_id is not None:  # the rows it runs in (an iteration and its loop), in one read
            holder = the_one(StepExecution.objects.select_related("parent").filter(pk=execution.parent_id))
            for row in (holder, holder.parent if holder is not None else None):
                if row is not None:
                    self.remember(row)
        task_fields = agent_task_remember(execution, result)
        stale = stale_answer(execution, result)
        if task_fields and (stale or result.get("status") == StepStatus.INPUT_REQUIRED):
            row_update(execution, task_fields)  # these paths save other fields, or none
        if stale:
            run_log(
                self.run,
                f"Result for step '{execution.step_id}' ignored: it is from before the step's last answer",
                source=SOURCE,
                level=LogLevel.WARNING,
                step_id=execution.step_id,
                data={"task_id": result.get("task_id"), "status": result.get("status")},
            )
            return
        if result.get("status") == StepStatus.INPUT_REQUIRED:
            input_required_record(self, execution, result)  # runs/input.py: the step waits for a person
            self.lease_renew()
            return
        # The step's duration is its own span (dispatch to result); the agent's call time stays in the
        # bridge's log entry, so a value the agent's side sends is never stored.
        execution.end_at(timezone.now())
        if result.get("status") == "SUCCESS":
            step_transition(execution, StepStatus.COMPLETED, run=self.run)
            execution.output_data = storable(result.get("output_data"))
            message, level = f"Step '{execution.step_id}' completed", LogLevel.INFO
        else:
            step_transition(execution, StepStatus.FAILED, run=self.run)
            error = storable(str(result.get("error_message") or "The agent reported a failure"))
            execution.error_message = error[:100_000]
            message, level = f"Step '{execution.step_id}' failed: {execution.error_message}", LogLevel.ERROR
        row_update(execution, ["status", "output_data", "error_message", "completed_at", "duration_ms", *task_fields])
        run_log(
            self.run,
            message,
            source=SOURCE,
            level=level,
            step_id=execution.step_id,
            data={"task_id": execution.task_id, "duration_ms": execution.duration_ms, **self.where(execution)},
        )
        metadata = {"duration_ms": execution.duration_ms, **self.where(execution)}
        if execution.error_message:
            metadata["error"] = execution.error_message
        monitoring_publish(self.run, status=execution.status, step_id=execution.step_id, metadata=metadata)
        self.advance(execution)
        self.lease_renew()

    def overdue_handle(self, now) -> None:
        """Tries past their deadline (retried per policy), retries that are due, and blocks or
        fork-join branches past their timeout."""
        for row_id in self.due_ids(now):
            row = self.row(row_id, fresh=True)  # an earlier one may have cancelled it
            if self.run.status not in RECORDING_RUN or row.status not in ACTIVE_STEP:
                continue
            if row.status == StepStatus.PENDING:
                if self.run.status == RunStatus.PAUSED:
                    continue  # a retry or a held step: dispatched at resume
                self.send(row)
            elif row.status == StepStatus.INPUT_REQUIRED:
                input_expire(self, row, now)
            elif row.step_type == "agent":
                self.timeout(row, now)
            else:
                self.expire(row)
        self.lease_renew()

    def due_ids(self, now) -> list:
        """The ids of the run's active tries of its attempt whose `due_at` has come, soonest first. SQL
        built once: the ORM compiled it again at every execution request (0.5 ms of CPU)."""
        with connection.cursor() as cursor:
            cursor.execute(DUE_SQL, db_params([self.run.pk, *ACTIVE_STEP, now, self.run.attempt]))
            return [row_id for (row_id,) in cursor.fetchall()]

    # -- rows ------------------------------------------------------------------------------------

    def remember(self, row: StepExecution) -> StepExecution:
        self.by_id[row.id] = row
        key = (row.scope, row.step_id)
        current = self.by_place.get(key)
        if current is None or (row.attempt, row.try_number) >= (current.attempt, current.try_number):
            self.by_place[key] = row
        return row

    def row(self, row_id, *, fresh: bool = False) -> StepExecution | None:
        if row_id is None:
            return None
        if fresh or row_id not in self.by_id:
            found = the_one(StepExecution.objects.filter(pk=row_id))
            if found is None:
                return None
            self.by_id[row_id] = found
        return self.by_id[row_id]

    def latest(self, scope: str, step_id: str) -> StepExecution | None:
        """The newest try of a step in a scope, of any attempt."""
        key = (scope, step_id)
        if key not in self.by_place and scope in self.new_scopes:
            self.by_place[key] = None
        if key not in self.by_place:
            where = '"run_id" = %s AND "scope" = %s AND "step_id" = %s'
            newest = 'ORDER BY "attempt" DESC, "try_number" DESC LIMIT 1'
            found = the_row(StepExecution, where, [self.run.pk, scope, step_id], tail=newest)
            self.by_place[key] = found
            if found is not None:
                self.by_id[found.id] = found
        return self.by_place[key]

    def new_row(self, step_id: str, *, scope: str, parent, step_type: str, **fields) -> StepExecution:
        step = self.plan.steps.get(step_id, {})
        # Inside a loop iteration or a fork-join branch, every row says which (for the steps list).
        row = StepExecution(
            run=self.run,
            step_id=step_id,
            step_type=step_type,
            agent_name=step.get("agent_name", "") if step_type == "agent" else "",
            scope=scope,
            parent=parent,
            iteration=fields.pop("iteration", parent.iteration if parent is not None else None),
            branch=fields.pop("branch", parent.branch if parent is not None else ""),
            attempt=self.run.attempt,
            **fields,
        )
        return row

    def where(self, row: StepExecution) -> dict:
        """Where a row is, for logs and monitoring: scope, iteration, branch (when inside a block)."""
        found = {}
        if row.scope:
            found["scope"] = row.scope
        if row.iteration is not None:
            found["iteration"] = row.iteration
        if row.branch:
            found["branch"] = row.branch
        if row.step_type != "agent":
            found["step_type"] = row.step_type
        return found

    def row_start(self, row: StepExecution, *, due_seconds: int | None = None) -> None:
        """A block, loop iteration or fork-join branch starts (agent steps start in `send`)."""
        adding = row._state.adding
        step_transition(row, StepStatus.RUNNING, run=self.run)
        row.started_at = timezone.now()
        if due_seconds:
            row.timeout_ms = due_seconds * 1000
            row.due_at = row.started_at + timedelta(seconds=due_seconds)
            self.deadlines.append(row.due_at)
        row.save(**({} if adding else {"update_fields": ["status", "started_at", "timeout_ms", "due_at"]}))
        self.remember(row)
        if row.step_type in SLOT_TYPES and self.run.attempt == 1:
            self.new_scopes.add(row.scope)
        monitoring_publish(self.run, status=StepStatus.RUNNING, step_id=row.step_id, metadata=self.where(row))

    def row_finish(self, row: StepExecution, outcome: Outcome, *, log: bool = True) -> None:
        now = timezone.now()
        step_transition(row, outcome.status, run=self.run)
        row.end_at(now)
        row.output_data = outcome.output if outcome.status == StepStatus.COMPLETED else row.output_data
        row.error_message = outcome.error[:100_000] if outcome.status == StepStatus.FAILED else ""
        row.save(update_fields=["status", "completed_at", "duration_ms", "output_data", "error_message", "progress"])
        metadata = {"duration_ms": row.duration_ms, **self.where(row)}
        if row.error_message:
            metadata["error"] = row.error_message
        if log:
            failed = outcome.status == StepStatus.FAILED
            run_log(
                self.run,
                f"{self.label(row)} {outcome.status.lower()}" + (f": {row.error_message}" if failed else ""),
                source=SOURCE,
                level=LogLevel.ERROR if failed else LogLevel.INFO,
                step_id=row.step_id,
                data=metadata,
            )
        monitoring_publish(self.run, status=outcome.status, step_id=row.step_id, metadata=metadata)

    def label(self, row: StepExecution) -> str:
        if row.step_type == ITERATION:
            return f"Iteration {row.iteration} of loop '{row.step_id}'"
        if row.step_type in SLOT_TYPES:
            return f"Branch '{row.branch}' of fork-join '{row.step_id}'"
        return f"Step '{row.step_id}'"

    def cancel_below(self, row: StepExecution, reason: str) -> None:
        """Cancels every active execution inside a block, iteration or branch (one query per level)."""
        now = timezone.now()
        frontier, waited = [row.id], False
        while frontier:
            active = StepExecution.objects.filter(parent_id__in=frontier, status__in=CANCELLABLE_STEP)
            gone = set(active.values_list("id", flat=True))
            # Those that were running are announced (a try waiting for its turn never started).
            running = list(active.filter(status__in=STARTED_STEP))
            waited = waited or any(row.status == StepStatus.INPUT_REQUIRED for row in running)
            active.update(status=StepStatus.CANCELLED, error_message=reason, completed_at=now)
            durations_stamp(running, now)
            for row in running:
                row.status, row.error_message = StepStatus.CANCELLED, reason
                step_event(self.run, row, StepStatus.CANCELLED)
                monitoring_publish(self.run, status=StepStatus.CANCELLED, step_id=row.step_id, metadata=self.where(row))
            agent_tasks_cancel(self.run, running, reason=reason)
            for row_id in gone:
                self.by_id.pop(row_id, None)
            self.by_place = {k: v for k, v in self.by_place.items() if v is None or v.id not in gone}
            frontier = list(gone)
        if waited:
            waiting_refresh(self.run)

    # -- the walk (top-down) ---------------------------------------------------------------------

    def walk_chain(self, step_id: str | None, *, scope: str, parent) -> Outcome:
        """Runs a chain from `step_id`; the output of a chain is its last step's output."""
        outcome = Outcome(StepStatus.COMPLETED)
        while step_id:
            outcome = self.walk_step(step_id, scope=scope, parent=parent)
            if outcome.status != StepStatus.COMPLETED:
                return outcome
            step_id = self.plan.next.get(step_id)
        return outcome

    def walk_step(self, step_id: str, *, scope: str, parent) -> Outcome:
        row = self.latest(scope, step_id)
        if row is not None and row.status == StepStatus.COMPLETED:
            return Outcome(StepStatus.COMPLETED, row.output_data)
        if row is not None and row.attempt == self.run.attempt:
            if row.status in ACTIVE_STEP:
                return WAITING
            return Outcome(StepStatus.FAILED, error=self.failure(row))
        kind = self.plan.kind(step_id)
        if kind == "agent":
            return self.agent_begin(step_id, scope=scope, parent=parent)
        return self.block_begin(step_id, kind, scope=scope, parent=parent)

    def failure(self, row: StepExecution) -> str:
        return f"{self.label(row)} failed: {row.error_message or row.status}"

    def context(self, scope: str, parent) -> dict:
        """References resolve against the run input, visible outputs and the innermost loop iteration."""
        loop, current = None, parent
        while current is not None:
            if current.step_type == ITERATION:
                loop = loop_context(current, self.row(current.parent_id))
                break
            current = self.row(current.parent_id)
        known = {
            step_id: row.output_data
            for (row_scope, step_id), row in self.by_place.items()
            if row_scope == scope
            and row is not None
            and row.status == StepStatus.COMPLETED
            and row.attempt == self.run.attempt
            and row.step_type not in SLOT_TYPES
        }
        return reference_context(self.run, scope, loop, known)

    # -- agent steps -----------------------------------------------------------------------------

    def agent_begin(self, step_id: str, *, scope: str, parent) -> Outcome:
        step = self.plan.steps[step_id]
        execution = self.new_row(step_id, scope=scope, parent=parent, step_type="agent")
        self.remember(execution)
        try:
            execution.input_data = resolve_value(step.get("input_mapping") or {}, self.context(scope, parent))
        except UnresolvedReference as exc:
            return self.fail_at_dispatch(execution, f"Cannot resolve the input: {exc}")
        agent = self.agent(execution.agent_name)
        if agent is None:
            return self.fail_at_dispatch(execution, f"Agent '{execution.agent_name}' does not exist (it was deleted)")
        if agent.status != AgentStatus.ACTIVE:
            return self.fail_at_dispatch(execution, f"Agent '{execution.agent_name}' is {agent.status}")
        execution.timeout_ms = step["timeout_seconds"] * 1000 if step.get("timeout_seconds") else agent.timeout_ms
        self.send(execution)
        return WAITING

    def agent(self, name: str) -> Agent | None:
        if name not in self.agents:
            self.agents[name] = live_agent(name)
        return self.agents[name]

    def fail_at_dispatch(self, execution: StepExecution, error: str) -> Outcome:
        now = timezone.now()
        step_transition(execution, StepStatus.FAILED, run=self.run)
        execution.error_message = error
        execution.started_at = now
        execution.end_at(now)
        execution.save()
        run_log(
            self.run,
            f"Step '{execution.step_id}' failed: {error}",
            source=SOURCE,
            level=LogLevel.ERROR,
            step_id=execution.step_id,
            data=self.where(execution),
        )
        metadata = {"error": error, **self.where(execution)}
        monitoring_publish(self.run, status=StepStatus.FAILED, step_id=execution.step_id, metadata=metadata)
        return Outcome(StepStatus.FAILED, error=self.failure(execution))

    def send(self, execution: StepExecution) -> None:
        """Marks the try RUNNING and queues its agent task (sent by the executor after commit)."""
        if self.run.status == RunStatus.PAUSED:
            step_hold(self, execution)  # runs/pause.py: a PENDING row, dispatched at resume
            return
        now = timezone.now()
        suffix = secrets.token_hex(4)
        step_transition(execution, StepStatus.RUNNING, run=self.run)
        execution.started_at = now
        execution.task_id = f"task-{execution.step_id}-{suffix}"
        execution.correlation_id = f"corr-{self.run.id}-{execution.step_id}-{suffix}"
        grace = timedelta(seconds=settings.EXECUTOR_STEP_GRACE_SECONDS)
        execution.due_at = now + timedelta(milliseconds=execution.timeout_ms) + grace
        self.deadlines.append(execution.due_at)
        if execution._state.adding:
            rows_insert([execution])  # the SQL built once: save() compiled the INSERT every time
        else:
            execution.save()
        self.remember(execution)
        retry = self.plan.steps[execution.step_id].get("retry")
        task = messages.agent_task(self.run, execution, retry=retry)
        outbox_enqueue(topic=settings.KAFKA_TASKS_TOPIC, key=str(self.run.id), payload=task)
        where = self.where(execution)
        run_log(
            self.run,
            f"Step '{execution.step_id}' dispatched to agent '{execution.agent_name}'",
            source=SOURCE,
            step_id=execution.step_id,
            data={
                "task_id": execution.task_id,
                "try": execution.try_number,
                "timeout_ms": execution.timeout_ms,
                **where,
            },
        )
        metadata = {"task_id": execution.task_id, **where}
        monitoring_publish(self.run, status=StepStatus.RUNNING, step_id=execution.step_id, metadata=metadata)

    def timeout(self, execution: StepExecution, now) -> None:
        step_transition(execution, StepStatus.FAILED, run=self.run)
        execution.end_at(now)
        execution.error_message = f"Timed out: no result from agent '{execution.agent_name}' within " + (
            f"{execution.timeout_ms} ms (+{settings.EXECUTOR_STEP_GRACE_SECONDS} s grace)"
        )
        execution.save()
        agent_tasks_cancel(self.run, [execution], reason="step timed out")
        run_log(
            self.run,
            f"Step '{execution.step_id}': {execution.error_message}",
            source=SOURCE,
            level=LogLevel.WARNING,
            step_id=execution.step_id,
            data=self.where(execution),
        )
        agent = live_agent(execution.agent_name)
        step = self.plan.steps[execution.step_id]
        policy = retry_policy(agent.retry_config if agent else None, step.get("retry"))
        if execution.try_number > policy["max_retries"]:
            metadata = {"error": execution.error_message, **self.where(execution)}
            monitoring_publish(self.run, status=StepStatus.FAILED, step_id=execution.step_id, metadata=metadata)
            self.advance(execution)
            return
        retry = StepExecution(
            run=self.run,
            step_id=execution.step_id,
            step_type=execution.step_type,
            agent_name=execution.agent_name,
            scope=execution.scope,
            parent_id=execution.parent_id,
            iteration=execution.iteration,
            branch=execution.branch,
            attempt=execution.attempt,
            try_number=execution.try_number + 1,
            input_data=execution.input_data,
            timeout_ms=execution.timeout_ms,
            due_at=now + retry_delay(policy, execution.try_number),
        )
        step_transition(retry, StepStatus.PENDING, run=self.run)
        retry.save()
        self.remember(retry)
        self.deadlines.append(retry.due_at)
        run_log(
            self.run,
            f"Step '{retry.step_id}' will be retried (try {retry.try_number})",
            source=SOURCE,
            step_id=retry.step_id,
            data={"due_at": retry.due_at.isoformat(), **self.where(retry)},
        )

    # -- going on after an event (bottom-up) -----------------------------------------------------

    def advance(self, row: StepExecution) -> None:
        """`row` (an agent step or a block) has just finished for good: its chain goes on, or the
        chain's holder (block, iteration, branch, the run) is told."""
        holder = self.row(row.parent_id)
        if holder is not None and holder.status not in ACTIVE_STEP:
            return  # decided already (a sibling failed, a branch won): nothing follows
        if row.status == StepStatus.COMPLETED:
            outcome = Outcome(StepStatus.COMPLETED, row.output_data)
            following = self.plan.next.get(row.step_id)
            if following:
                outcome = self.walk_chain(following, scope=row.scope, parent=holder)
                if not outcome.finished:
                    return
        else:
            outcome = Outcome(StepStatus.FAILED, error=self.failure(row))
        self.chain_done(holder, row, outcome)

    def chain_done(self, holder: StepExecution | None, last: StepExecution, outcome: Outcome) -> None:
        if holder is None:
            self.run_finish(outcome)
            return
        if holder.status not in ACTIVE_STEP:
            return  # the block was decided already (a sibling failed, a branch won); this changes nothing
        if holder.step_type in SLOT_TYPES:
            self.row_finish(holder, outcome)
            self.child_done(self.row(holder.parent_id), holder, outcome)
        else:
            self.child_done(holder, last, outcome)

    def child_done(self, block: StepExecution, child: StepExecution, outcome: Outcome) -> None:
        if block is None or block.status not in ACTIVE_STEP:
            return
        decided = self.block_child_done(block, child, outcome)
        if decided.finished:
            self.row_finish(block, decided)
            self.advance(block)

    def expire(self, row: StepExecution) -> None:
        """A block or fork-join branch ran past its timeout: it fails and what runs inside is cancelled."""
        outcome = Outcome(StepStatus.FAILED, error=f"timed out after {(row.timeout_ms or 0) // 1000} s")
        self.cancel_below(row, f"Cancelled: {self.label(row).lower()} timed out")
        self.row_finish(row, outcome)
        if row.step_type in SLOT_TYPES:
            self.child_done(self.row(row.parent_id), row, outcome)
        else:
            self.advance(row)

    def run_finish(self, outcome: Outcome) -> None:
        if self.run.status != RunStatus.RUNNING:
            return
        if not outcome.finished:
            return
        # Nothing may stay active in a finished run (a retry starts from clean rows; the deadline
        # sweep would otherwise keep finding them).
        steps_cancel(self.run, reason=f"Run {outcome.status.lower()}")
        if outcome.status == StepStatus.COMPLETED:
            run_transition(self.run, RunStatus.COMPLETED, source=SOURCE, output=outcome.output)
        else:
            run_transition(self.run, RunStatus.FAILED, source=SOURCE, error=outcome.error)

    def lease_renew(self) -> None:
        """A waiting run is looked at again by recovery once its lease and the deadlines set now pass."""
        if self.run.status != RunStatus.RUNNING:
            return
        now = timezone.now()
        lease = max([now + timedelta(seconds=settings.EXECUTOR_LEASE_SECONDS), *self.deadlines])
        current = self.run.lease_expires_at
        # Renewing at every step would cost a write each time; half a lease of slack is enough.
        half = timedelta(seconds=settings.EXECUTOR_LEASE_SECONDS / 2)
        if current is not None and current - now >= half and all(d <= current for d in self.deadlines):
            return
        self.run.lease_expires_at = lease
        Run.objects.filter(pk=self.run.pk).update(lease_expires_at=lease)
