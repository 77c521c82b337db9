import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.formats import iso_datetime
from runs.choices import ACTIVE_RUN, ACTIVE_STEP, LogLevel, LogSource, RunStatus, StepStatus
from workflows.models import Workflow

# A run's input and output can be large (a loop's collection): the executor's row lock leaves them
# unread (runs/work.py) until a reference or a run event needs them (runs/events.py).
RUN_LARGE_FIELDS = ("input_data", "output_data")


class Run(models.Model):
    """One execution of a workflow, pinned to the version (and plan) it started with."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    workflow_name = models.CharField(max_length=255)
    workflow_version = models.PositiveIntegerField()
    plan = models.JSONField(help_text="The pinned definition the executor runs.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    attempt = models.PositiveIntegerField(default=1)
    input_data = models.JSONField(default=dict)
    output_data = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    triggered_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True, default="")
    # Why it was cancelled (POST /runs/{id}/cancel {"reason"}); retry clears it.
    cancel_reason = models.TextField(null=True, blank=True)  # noqa: DJ001 - null = none given (an expand step)
    # When nobody has moved the run on by then, the recovery task asks an executor to look again.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Times the recovery task re-requested it since it last moved: the next lease doubles each time.
    recoveries = models.PositiveIntegerField(null=True, blank=True)  # null = 0 (nullable: an expand step)
    # True while one of its steps waits for a person (INPUT_REQUIRED); null = false (an expand step).
    waiting_for_input = models.BooleanField(null=True, blank=True)
    # POST /runs/{id}/rerun: the run this one reran (its earlier steps' outputs were reused).
    rerun_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns", db_index=False
    )

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(F("created_at").desc(), F("id").desc(), name="run_created_idx"),
            models.Index(fields=["status", "-created_at", "-id"], name="run_status_created_idx"),
            models.Index(fields=["workflow", "-created_at", "-id"], name="run_workflow_created_idx"),
            models.Index(F("updated_at").desc(), F("id").desc(), name="run_updated_idx"),  # ordering=-updated_at
            # The other sort keys of the list (either direction: a B-tree is read backwards too), so a
            # sorted first page reads 20 index entries instead of sorting every run.
            models.Index(fields=["started_at", "id"], name="run_started_idx"),
            models.Index(fields=["completed_at", "id"], name="run_completed_idx"),
            models.Index(fields=["status", "id"], name="run_status_idx"),
            models.Index(fields=["workflow_name", "id"], name="run_workflow_name_idx"),
            models.Index(fields=["lease_expires_at"], condition=Q(status__in=ACTIVE_RUN), name="run_lease_idx"),
            # The runs list filtered on waiting_for_input=true: few rows, so a small partial index.
            models.Index(
                F("created_at").desc(), F("id").desc(), condition=Q(waiting_for_input=True), name="run_waiting_idx"
            ),
        ]

    def __str__(self):
        return f"{self.workflow_name} run {self.id}"


class RunCount(models.Model):
    """How many runs have a status, per workflow (or all: runs.counts.ALL_WORKFLOWS), created in one
    UTC hour or day: the exact totals of the runs list (runs/counts.py). Written only by the fold."""

    grain = models.CharField(max_length=1)  # "h" hour, "d" day
    workflow_id = models.UUIDField()
    status = models.CharField(max_length=16)
    start = models.DateTimeField()
    n = models.BigIntegerField()

    class Meta:
        # start before status: a range of hours or days is one index range, whatever the statuses asked.
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "workflow_id", "start", "status"], include=["n"], name="runcount_key"
            ),
        ]

    def __str__(self):
        return f"{self.grain} {self.start:%Y-%m-%d %H}h {self.workflow_id} {self.status}: {self.n}"


class RunCountDelta(models.Model):
    """A change to RunCount not folded in yet: +1 / -1 per run written, moved or deleted, appended by
    the database trigger of migration 0012 (so writers never contend on a counter row)."""

    id = models.BigAutoField(primary_key=True)
    workflow_id = models.UUIDField()
    status = models.CharField(max_length=16)
    hour = models.DateTimeField()
    delta = models.IntegerField()

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H}h {self.workflow_id} {self.status} {self.delta:+d}"


class StepExecution(models.Model):
    """One try of one step in one attempt of a run."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    step_id = models.CharField(max_length=255)
    step_type = models.CharField(max_length=16, default="agent")
    agent_name = models.CharField(max_length=255, blank=True, default="")
    # Where in the plan: "" at top level; each loop iteration and fork-join branch is a scope of its
    # own, a path such as "items[3]" or "items[3]/fan:left" (runs/scopes.py).
    scope = models.CharField(max_length=255, blank=True, default="")
    # The block (or the loop iteration / fork-join branch) this execution runs in; None at top level.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children", db_index=False
    )
    # Blocks only: their counters (children running, done, failed; the branch taken ...), so a result
    # is decided without reading the block's other children.
    progress = models.JSONField(null=True, blank=True)
    iteration = models.PositiveIntegerField(null=True, blank=True)
    branch = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.RUNNING)
    attempt = models.PositiveIntegerField(default=1, help_text="The run attempt this try belongs to.")
    try_number = models.PositiveIntegerField(default=1, help_text="1 + the retries of this step in this attempt.")
    input_data = models.JSONField(null=True, blank=True)
    output_data = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=300, blank=True, default="")
    correlation_id = models.CharField(max_length=400, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # RUNNING: when it times out. PENDING: when the retry is due. INPUT_REQUIRED: when waiting ends.
    due_at = models.DateTimeField(null=True, blank=True)
    timeout_ms = models.PositiveIntegerField(null=True, blank=True)
    # The agent's A2A task, stored as soon as the bridge learns it: a restarted bridge follows that task
    # instead of calling the agent again, and cancel reaches it.
    agent_task_id = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001 - null: no task (expand step)
    agent_context_id = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001 - as above
    # INPUT_REQUIRED: what the agent asks ({"state", "message", "data", "requested_at"}); once answered
    # also responded_at, responded_by and the reply (kept for sending it again, never shown: runs/input.py).
    input_request = models.JSONField(null=True, blank=True)
    # A rerun copied this step's output from the run it reran instead of calling it; null = false.
    reused = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "scope", "step_id", "attempt", "try_number"], name="step_execution_unique_try"
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status__in=ACTIVE_STEP), name="step_due_idx"),
            # The next loop iterations to start, and a block's children still active (cancel).
            models.Index(fields=["parent", "status", "iteration"], name="step_parent_status_idx"),
            # The admin's step executions list, newest first (a first page reads 50 entries, sorts nothing).
            models.Index(F("created_at").desc(), F("id").desc(), name="step_created_idx"),
        ]

    def __str__(self):
        return f"{self.step_id} ({self.status})"

    def end_at(self, when) -> None:
        """Stamps the end; `duration_ms` is always the row's own span (the API shows both, so they agree;
        an agent's own call time is in the bridge's log entry)."""
        self.completed_at = when
        self.duration_ms = span_ms(self.started_at, when)


MAX_DURATION_MS = 2_147_483_647  # the column's limit (PostgreSQL integer)


def span_ms(started, completed) -> int | None:
    if started is None or completed is None:
        return None
    return min(max(int((completed - started).total_seconds() * 1000), 0), MAX_DURATION_MS)


class RunLog(models.Model):
    """A structured log entry of a run, from the API, the executor or the bridge."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="logs")
    step_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - null = run-level entry
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    source = models.CharField(max_length=16, choices=LogSource.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    # When what it tells happened (the bridge's call log: when the answer came), not when it was saved;
    # a run's entries are listed by it, then by id.
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("timestamp", "id")
        indexes = [
            models.Index(fields=["run", "timestamp", "id"], name="runlog_run_time_idx"),
            models.Index(fields=["run", "id"], name="runlog_run_idx"),
            models.Index(fields=["run", "level", "id"], name="runlog_run_level_idx"),
            models.Index(fields=["run", "step_id", "id"], name="runlog_run_step_idx"),
        ]

    def __str__(self):
        return f"[{self.level}] {self.message}"


class Event(models.Model):
    """One run or step status change, written in the transaction of the change: the single record of
    what happened when. Webhook deliveries are made from it (in the same transaction) and the live
    event stream reads it; the id orders everything."""

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=32)  # run.completed, step.failed, ... (runs/events.py)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)
    workflow_id = models.UUIDField()
    step_execution_id = models.UUIDField(null=True, blank=True)
    data = models.JSONField(help_text="The `data` of the body receivers get.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        indexes = [
            models.Index(fields=["run", "id"], name="event_run_idx"),
            models.Index(fields=["created_at"], name="event_created_idx"),
        ]

    def __str__(self):
        return f"#{self.id} {self.type}"

    def body(self) -> dict:
        """What a webhook receiver (and a live event stream) gets."""
        return {"type": self.type, "timestamp": iso_datetime(self.created_at), "data": self.data}


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` of `POST /workflows/{id}/execute`, per user, written in the transaction
    that creates its run: the unique (user, key) makes concurrent duplicates create one run
    (runs/idempotency.py). Kept IDEMPOTENCY_TTL_HOURS, then purged."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="sha256 of the workflow id and the request body.")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+", db_index=False)
    status_code = models.PositiveSmallIntegerField(default=202)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")]

    def __str__(self):
        return self.key
