"""Run and step statuses, and the one table of the moves between them.

`run_transition` and `step_transition` (runs/services.py) refuse any move the tables do not list, so
a status can only change the way this page says. Callers check first where they owe the user a
specific message (409 "only FAILED or CANCELLED runs can be retried").
"""

from django.db import models

from core.errors import Conflict


class RunStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # POST /runs/{id}/pause: steps in flight finish, nothing new is dispatched
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    # FAILED before it ran: its execution request could never be sent (runs/undelivered.py).
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.PAUSED}),
    RunStatus.RUNNING: frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PAUSED}),
    # Resume (RUNNING, also for a run paused before it started: the executor then starts it), or cancel.
    # A paused run neither completes nor fails: what its steps did while paused is decided at resume.
    RunStatus.PAUSED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset({RunStatus.PENDING}),  # retry: the same run, attempt + 1
    RunStatus.CANCELLED: frozenset({RunStatus.PENDING}),  # retry
}

# Runs with a lease (recovery re-requests them): a PAUSED run has none, so nothing dispatches it.
ACTIVE_RUN = (RunStatus.PENDING, RunStatus.RUNNING)
FINISHED_RUN = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
RETRYABLE_RUN = tuple(status for status, moves in RUN_TRANSITIONS.items() if RunStatus.PENDING in moves)
CANCELLABLE_RUN = tuple(status for status, moves in RUN_TRANSITIONS.items() if RunStatus.CANCELLED in moves)
PAUSABLE_RUN = tuple(status for status, moves in RUN_TRANSITIONS.items() if RunStatus.PAUSED in moves)
# Runs whose in-flight steps still record their results and time out (RUNNING, and PAUSED).
RECORDING_RUN = (RunStatus.RUNNING, RunStatus.PAUSED)


class StepStatus(models.TextChoices):
    PENDING = "PENDING"  # waiting for its retry delay
    RUNNING = "RUNNING"
    INPUT_REQUIRED = "INPUT_REQUIRED"  # the agent's task waits for a person (POST .../respond)
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


NEW = None  # a step execution not saved yet: the statuses it may be created with
STEP_TRANSITIONS: dict[str | None, frozenset[str]] = {
    NEW: frozenset({StepStatus.PENDING, StepStatus.RUNNING, StepStatus.FAILED, StepStatus.SKIPPED}),
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.CANCELLED}),
    StepStatus.RUNNING: frozenset(
        {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.INPUT_REQUIRED}
    ),
    # Answered (POST .../respond: back to RUNNING), no answer in time (FAILED), or cancelled.
    StepStatus.INPUT_REQUIRED: frozenset({StepStatus.RUNNING, StepStatus.FAILED, StepStatus.CANCELLED}),
    # A finished try stays finished; a retry is a new row (try_number + 1).
    StepStatus.COMPLETED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.SKIPPED: frozenset(),
    StepStatus.CANCELLED: frozenset(),
}

ACTIVE_STEP = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.INPUT_REQUIRED)
# Active and begun: a cancel announces them (a try waiting for its turn or its retry never started).
STARTED_STEP = (StepStatus.RUNNING, StepStatus.INPUT_REQUIRED)
CANCELLABLE_STEP = tuple(s for s, moves in STEP_TRANSITIONS.items() if s is not NEW and StepStatus.CANCELLED in moves)


class TransitionNotAllowed(Conflict):
    """A status change the transition tables do not list."""

    def __init__(self, kind: str, source, target):
        self.source, self.target = source, target
        super().__init__(f"A {kind} cannot go from {source or 'new'} to {target}.")


def run_transition_check(source: str, target: str) -> None:
    if target not in RUN_TRANSITIONS.get(source, ()):
        raise TransitionNotAllowed("run", source, target)


def step_transition_check(source: str | None, target: str) -> None:
    if target not in STEP_TRANSITIONS.get(source, ()):
        raise TransitionNotAllowed("step execution", source, target)


class LogLevel(models.TextChoices):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogSource(models.TextChoices):
    API = "api"
    EXECUTOR = "executor"
    BRIDGE = "bridge"
