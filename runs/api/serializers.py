from django.utils.timezone import now
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.api.serializers import StrictCharField, StrictSerializer, iso_datetime
from runs.choices import LogLevel, RunStatus, StepStatus
from runs.representations import run_data, step_data

_RUN_ID = "5b0f2d4c-8f57-4a8e-9c43-0f3c2a9d6b11"
_RUN = {
    "id": _RUN_ID,
    "run_id": _RUN_ID,
    "workflow_id": "0c7d9a43-2f0e-4c1b-a6a4-3f64a1f0e2b7",
    "workflow_name": "research-and-write",
    "workflow_version": 3,
    "status": "COMPLETED",
    "input_data": {"topic": "tides"},
    "output_data": {"text": "TIDES ARE CAUSED BY THE MOON"},
    "error_message": None,
    "attempt": 1,
    "triggered_by": "ops",
    "created_at": "2026-11-26T09:00:00.000000Z",
    "updated_at": "2026-11-26T09:00:01.250000Z",
    "started_at": "2026-11-26T09:00:00.050000Z",
    "completed_at": "2026-11-26T09:00:01.250000Z",
    "cancelled_at": None,
    "cancelled_by": None,
    "cancel_reason": None,
    "duration_ms": 1200,
    "waiting_for_input": False,
    "rerun_of": None,
}
_STEP = {
    "id": "9d1e2f3a-4b5c-4d6e-8f70-112233445566",
    "run_id": _RUN_ID,
    "step_id": "step-1",
    "step_type": "agent",
    "agent_name": "WriterAgent",
    "status": "COMPLETED",
    "attempt": 1,
    "try_number": 1,
    "iteration": None,
    "branch": None,
    "scope": None,
    "parent_id": None,
    "input_data": {"text": "tides are caused by the moon"},
    "output_data": {"text": "TIDES ARE CAUSED BY THE MOON"},
    "error_message": None,
    "task_id": "task-step-1-1a2b3c4d",
    "agent_task_id": None,
    "agent_context_id": None,
    "input_request": None,
    "started_at": "2026-11-26T09:00:00.060000Z",
    "completed_at": "2026-11-26T09:00:01.200000Z",
    "duration_ms": 1140,
    "reused": False,
}
_LOG = {
    "id": 42,
    "run_id": _RUN_ID,
    "step_id": "step-1",
    "level": "info",
    "source": "executor",
    "message": "Step 'step-1' completed",
    "data": {"task_id": "task-step-1-1a2b3c4d", "duration_ms": 1140},
    "timestamp": "2026-11-26T09:00:01.200000Z",
}


@extend_schema_serializer(
    examples=[OpenApiExample("Input", value={"input_data": {"topic": "tides"}}, request_only=True)]
)
class ExecuteSerializer(StrictSerializer):
    input_data = serializers.DictField(
        required=False, default=dict, help_text="The run's input; checked against the workflow's input_schema."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample("From a step", value={"from_step": "step-2"}, request_only=True),
        OpenApiExample("New input", value={"from_step": "step-2", "input_data": {"topic": "tides"}}, request_only=True),
    ]
)
class RerunSerializer(StrictSerializer):
    from_step = StrictCharField(
        required=False, max_length=255, help_text="A top-level step the original reached; default the start step."
    )
    input_data = serializers.DictField(required=False, help_text="Default: the original run's input.")


@extend_schema_serializer(
    examples=[OpenApiExample("With a reason", value={"reason": "Started with the wrong input"}, request_only=True)]
)
class CancelSerializer(StrictSerializer):
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=1000)


@extend_schema_serializer(
    examples=[OpenApiExample("Run", value=_RUN, response_only=True, status_codes=["200", "201", "202"])]
)
class RunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    run_id = serializers.UUIDField(help_text="Same as id (the older API's name).")
    workflow_id = serializers.UUIDField()
    workflow_name = serializers.CharField()
    workflow_version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    input_data = serializers.DictField()
    output_data = serializers.JSONField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    attempt = serializers.IntegerField()
    triggered_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(help_text="Last change of the run row (status, lease, output...).")
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancelled_by = serializers.CharField(allow_null=True)
    cancel_reason = serializers.CharField(
        allow_null=True, help_text="The reason given to cancel; null when none was given. Retry clears it."
    )
    duration_ms = serializers.IntegerField(allow_null=True, help_text="From start to finish, once finished.")
    waiting_for_input = serializers.BooleanField(
        help_text="True while one of its steps waits for a person (INPUT_REQUIRED; answer with .../respond)."
    )
    rerun_of = serializers.UUIDField(allow_null=True, help_text="The run this one reran (POST /runs/{id}/rerun).")

    def to_representation(self, run):
        return run_data(run)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Run",
            value={**_RUN, "message": "Workflow execution started", "timestamp": _RUN["created_at"]},
            response_only=True,
            status_codes=["200", "202"],
        )
    ]
)
class RunActionSerializer(RunSerializer):
    """What execute and cancel answer: the run, plus the older API's `message` and `timestamp`."""

    message = serializers.CharField(help_text="What was done, in words (the older API's action responses).")
    timestamp = serializers.DateTimeField(help_text="When it was done.")

    def to_representation(self, run):
        return {**run_data(run), "message": self.context.get("message", ""), "timestamp": iso_datetime(now())}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Retried run",
            value={
                **_RUN,
                "status": "PENDING",
                "attempt": 2,
                "message": "Run retried (attempt 2)",
                "timestamp": _RUN["completed_at"],
                "new_run_id": _RUN_ID,
                "original_run_id": _RUN_ID,
            },
            response_only=True,
            status_codes=["202"],
        )
    ]
)
class RunRetrySerializer(RunActionSerializer):
    """What retry answers: the run goes on as the same run, so both older ids are its id."""

    new_run_id = serializers.UUIDField(help_text="The run that carries on: this same run (the older API's name).")
    original_run_id = serializers.UUIDField(help_text="The run retried: this same run (the older API's name).")

    def to_representation(self, run):
        return {**super().to_representation(run), "new_run_id": str(run.id), "original_run_id": str(run.id)}


@extend_schema_serializer(
    examples=[OpenApiExample("Step execution", value=_STEP, response_only=True, status_codes=["200", "202"])]
)
class StepExecutionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    run_id = serializers.UUIDField()
    step_id = serializers.CharField()
    step_type = serializers.CharField()
    agent_name = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=StepStatus.choices)
    attempt = serializers.IntegerField(help_text="The run attempt this try belongs to.")
    try_number = serializers.IntegerField(help_text="1, then 2, 3... when the step is retried within an attempt.")
    iteration = serializers.IntegerField(allow_null=True, help_text="Loop iteration index, for loop body steps.")
    branch = serializers.CharField(allow_null=True, help_text="Fork-join branch name, for branch steps.")
    scope = serializers.CharField(
        allow_null=True,
        help_text="Where in the plan: null at top level, else the loop iterations and branches around it.",
    )
    parent_id = serializers.UUIDField(
        allow_null=True, help_text="The block, loop iteration or fork-join branch row this one runs in."
    )
    input_data = serializers.JSONField(allow_null=True)
    output_data = serializers.JSONField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    task_id = serializers.CharField(allow_null=True)
    agent_task_id = serializers.CharField(allow_null=True, help_text="The agent's A2A task, once it answered with one.")
    agent_context_id = serializers.CharField(allow_null=True, help_text="The A2A context of that task.")
    input_request = serializers.JSONField(
        allow_null=True,
        help_text="What the agent asks a person: {state (input-required or auth-required), message, data, "
        "requested_at}; after an answer also responded_at and responded_by.",
    )
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(
        allow_null=True,
        help_text="completed_at - started_at; null until it ends or when it never started. An agent's own call "
        "time is in the bridge's log entry (data.duration_ms).",
    )
    reused = serializers.BooleanField(help_text="True: copied from the rerun's original run, not run again.")

    def to_representation(self, step):
        return step_data(step)


@extend_schema_serializer(
    examples=[
        OpenApiExample("Text", value={"text": "Yes, book the 9:40 train."}, request_only=True),
        OpenApiExample("Data", value={"data": {"approved": True, "budget": 120}}, request_only=True),
    ]
)
class RespondSerializer(StrictSerializer):
    """The answer for an agent that asked for input: `text`, `data`, or both."""

    text = StrictCharField(required=False, allow_null=True, max_length=100_000, help_text="Sent as a text part.")
    data = serializers.DictField(required=False, allow_null=True, help_text="Sent as a data part.")

    def validate(self, attrs):
        if attrs.get("text") is None and attrs.get("data") is None:
            raise serializers.ValidationError({"text": "Give 'text' or 'data' (or both)."}, code="required")
        return attrs


@extend_schema_serializer(examples=[OpenApiExample("Log entry", value=_LOG, response_only=True)])
class RunLogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    run_id = serializers.UUIDField()
    step_id = serializers.CharField(allow_null=True)
    level = serializers.ChoiceField(choices=LogLevel.choices)
    source = serializers.CharField(help_text="api, executor or bridge")
    message = serializers.CharField()
    data = serializers.DictField()
    timestamp = serializers.DateTimeField()

    def to_representation(self, entry):
        return {
            "id": entry.id,
            "run_id": str(entry.run_id),
            "step_id": entry.step_id,
            "level": entry.level,
            "source": entry.source,
            "message": entry.message,
            "data": entry.data,
            "timestamp": iso_datetime(entry.timestamp),
        }
