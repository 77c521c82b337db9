import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from core.api.exceptions import error_body, flatten_errors, validation_error
from core.api.filters import FilterBackend
from core.api.viewsets import BaseViewSet
from core.roles import Role
from runs import idempotency, rerun, services
from runs.api.pagination import RunPagination
from runs.api.serializers import (
    CancelSerializer,
    ExecuteSerializer,
    RerunSerializer,
    RespondSerializer,
    RunActionSerializer,
    RunLogSerializer,
    RunRetrySerializer,
    RunSerializer,
    StepExecutionSerializer,
)
from runs.filtersets import RunFilterSet, RunLogFilterSet, StepExecutionFilterSet
from runs.input import step_respond
from runs.models import Run, RunLog, StepExecution
from runs.pause import run_pause, run_resume
from workflows.models import LIVE_STATUSES, Workflow

# steps and logs list another model than the run: without this the path's id would take that
# model's key type (a log entry's is an integer).
_RUN_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The run's id.")


@extend_schema_view(
    list=extend_schema(
        summary="List runs",
        description=(
            "Newest first; filter by status (several), workflow (`workflow_id`, or the older name "
            "`workflow_definition_id`) and creation time; sort with `ordering` or `sort_by` + `sort_order`."
        ),
    ),
    retrieve=extend_schema(summary="Get a run", description="Status, timestamps, input, output and error."),
    steps=extend_schema(
        summary="List a run's step executions",
        description="Every try of every step, in the order they started, with inputs, outputs and errors.",
        responses=StepExecutionSerializer(many=True),
        filters=True,
        parameters=[_RUN_ID],
    ),
    logs=extend_schema(
        summary="List a run's log entries",
        description="Structured entries from the API, the executor and the bridge, oldest first.",
        responses=RunLogSerializer(many=True),
        filters=True,
        parameters=[_RUN_ID],
    ),
    retry=extend_schema(
        summary="Retry a failed or cancelled run",
        description=(
            "202: the run goes back to PENDING with `attempt` + 1 and resumes at the first incomplete step; "
            "completed steps keep their outputs and are not called again. 409 unless FAILED or CANCELLED."
        ),
        request=None,
        responses={202: RunRetrySerializer},
    ),
    rerun=extend_schema(
        summary="Rerun a finished run from a step",
        description=(
            "202 with a **new** run (`rerun_of` = this run) of the same workflow version. The top-level steps "
            "before `from_step` (default: the start step) are not run again: their rows, and those of "
            "everything that ran inside them, are copied from this run (COMPLETED, `reused: true`, output "
            "copied, no agent called); execution starts at `from_step` with `input_data` (default: this run's "
            "input). 409 unless the run finished (COMPLETED, FAILED, CANCELLED); 422 on `from_step` when it is "
            "unknown, inside a block or never reached by this run. Audited as `run.rerun`."
        ),
        request=RerunSerializer,
        responses={202: RunActionSerializer},
    ),
    cancel=extend_schema(
        summary="Cancel a pending or running run",
        description=(
            "The run is CANCELLED at once; no further step is dispatched. 409 when it already finished. "
            "The optional `reason` is kept on the run as `cancel_reason` (a retry clears it)."
        ),
        request=CancelSerializer,
        responses={200: RunActionSerializer},
    ),
    pause=extend_schema(
        summary="Pause a pending or running run",
        description=(
            "The run is PAUSED at once: steps already in flight finish and their results are recorded, but "
            "nothing new is dispatched (no next step, loop iteration, parallel child or retry); their deadlines "
            "keep running. A paused run neither completes nor fails until it is resumed. 409 unless PENDING or "
            "RUNNING. Audited as `run.pause`; event and webhook `run.paused`."
        ),
        request=None,
        responses={200: RunActionSerializer},
    ),
    resume=extend_schema(
        summary="Resume a paused run",
        description=(
            "The run is RUNNING again and the executor dispatches what became ready while it was paused (a run "
            "paused before it started is started); a step that finished or failed meanwhile is taken into account "
            "now, so the run may complete or fail at once. 409 unless PAUSED. Audited as `run.resume`; event and "
            "webhook `run.resumed`."
        ),
        request=None,
        responses={200: RunActionSerializer},
    ),
    respond=extend_schema(
        summary="Answer a step waiting for input",
        description=(
            "A step whose agent asked for input (status INPUT_REQUIRED, its question in `input_request`) gets "
            "the answer: `text` (sent as a text part), `data` (a data part), or both, in the agent's same task "
            "and context. 202 with the step, back to RUNNING with a new deadline. 409 unless the step is "
            "INPUT_REQUIRED in a RUNNING run; 422 without text or data. Audited as `run.respond`."
        ),
        request=RespondSerializer,
        responses={202: StepExecutionSerializer},
        parameters=[OpenApiParameter("step_execution_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    ),
)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    serializer_class = RunSerializer
    pagination_class = RunPagination  # exact totals from the run counters (runs/counts.py)
    ordering_fields = ["created_at", "updated_at", "started_at", "completed_at", "status", "workflow_name"]
    ordering = ["-created_at"]
    action_roles = {
        "retry": Role.OPERATOR,
        "rerun": Role.OPERATOR,
        "cancel": Role.OPERATOR,
        "respond": Role.OPERATOR,
        "pause": Role.OPERATOR,
        "resume": Role.OPERATOR,
        "steps": Role.VIEWER,
        "logs": Role.VIEWER,
    }
    extra_error_codes = {
        "retry": ["409"],
        "rerun": ["409"],
        "cancel": ["409"],
        "respond": ["409"],
        "pause": ["409"],
        "resume": ["409"],
    }

    @property
    def filterset_class(self):
        # One viewset, three lists: the schema and the filter backend both read this per action.
        return {"steps": StepExecutionFilterSet, "logs": RunLogFilterSet}.get(self.action, RunFilterSet)

    def get_queryset(self):
        # steps and logs list a run's children; their filtersets (and the schema) expect those models.
        if self.action == "steps":
            return StepExecution.objects.order_by("created_at", "id")
        if self.action == "logs":
            return RunLog.objects.order_by("timestamp", "id")  # the order things happened (RunLog.timestamp)
        return Run.objects.defer("plan")

    def _children(self, serializer_class):
        run_id = self.kwargs["pk"]
        try:
            get_object_or_404(Run.objects.only("id"), pk=run_id)  # a malformed id is a 404 too
        except Http404:
            raise exceptions.NotFound(f"Run {run_id!r} not found.") from None
        queryset = FilterBackend().filter_queryset(self.request, self.get_queryset().filter(run_id=run_id), self)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @action(detail=True, methods=["get"])
    def steps(self, request, pk=None):
        return self._children(StepExecutionSerializer)

    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        return self._children(RunLogSerializer)

    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        run = services.run_retry(run=self.get_object(), user=request.user)
        message = f"Run retried (attempt {run.attempt})"
        return Response(RunRetrySerializer(run, context={"message": message}).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        serializer = RerunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        new = rerun.run_rerun(self.get_object(), user=request.user, **serializer.validated_data)
        data = RunActionSerializer(new, context={"message": f"Run rerun as {new.id}"}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers=self.location(new.pk, basename="run"))

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.run_cancel(run=self.get_object(), user=request.user, reason=serializer.validated_data["reason"])
        return Response(RunActionSerializer(run, context={"message": "Run cancelled"}).data, status=status.HTTP_200_OK)

    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        run = run_pause(run=self.get_object(), user=request.user)
        return Response(RunActionSerializer(run, context={"message": "Run paused"}).data, status=status.HTTP_200_OK)

    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        run = run_resume(run=self.get_object(), user=request.user)
        return Response(RunActionSerializer(run, context={"message": "Run resumed"}).data, status=status.HTTP_200_OK)

    @action(detail=True, methods=["post"], url_path=r"steps/(?P<step_execution_id>[^/.]+)/respond")
    def respond(self, request, pk=None, step_execution_id=None):
        serializer = RespondSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            step_uuid = uuid.UUID(step_execution_id)
        except ValueError:
            raise exceptions.NotFound(f"Step execution {step_execution_id!r} not found.") from None
        execution = step_respond(
            run=self.get_object(),
            step_execution_id=step_uuid,
            text=serializer.validated_data.get("text"),
            data=serializer.validated_data.get("data"),
            user=request.user,
        )
        return Response(StepExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


class WorkflowExecuteViewSet(BaseViewSet):
    """`POST /workflows/{id}/execute`: under the workflow's path, but a run is what it creates, so it
    lives with the runs (workflows know nothing of runs)."""

    queryset = Workflow.objects.live()
    action_roles = {"execute": Role.OPERATOR}
    extra_error_codes = {"execute": ["409"]}

    def get_object(self):
        """The live workflow of the URL, or 404 (SQL built once: BaseViewSet.live_object)."""
        return self.live_object(Workflow, LIVE_STATUSES)

    @extend_schema(
        summary="Run a workflow",
        description=(
            "202 at once with the PENDING run; the executor picks it up through Kafka (queued while Kafka is "
            "down). The input is checked against the workflow's `input_schema` (422 with `input_data.<path>`); "
            "an inactive workflow is 409, and so is one whose plan calls an agent that is deleted or inactive "
            "(anywhere, also inside parallel, conditional, loop and fork-join steps): the 409 names them. "
            "`Location` is the new run's URL. With an `Idempotency-Key` header (1..255 characters, per user, kept "
            "IDEMPOTENCY_TTL_HOURS): the same key and body answer with the run created the first time (202, "
            "header `Idempotent-Replayed: true`, nothing created, nothing audited); the same key with another body "
            "is 422 `idempotency_key_reused`; a duplicate sent while the first is still being handled is 409."
        ),
        request=ExecuteSerializer,
        responses={202: RunActionSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="Any 1..255 characters chosen by the client; send it again to retry safely.",
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None):
        workflow = self.get_object()
        serializer = ExecuteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        input_data = serializer.validated_data["input_data"]
        key = request.headers.get(idempotency.HEADER)
        if key is None:
            run = services.run_execute(workflow=workflow, input_data=input_data, user=request.user)
            code, headers = 202, {}
        else:
            try:
                done = idempotency.run_execute_idempotent(
                    workflow=workflow,
                    input_data=input_data,
                    user=request.user,
                    key=idempotency.key_check(key),
                    body=request.data,
                )
            except idempotency.KeyReused as exc:
                body = error_body(request, 422, exc.message, error=exc.error_code)
                return Response({**body, "errors": flatten_errors(validation_error(exc).detail)}, status=422)
            run, code = done.run, done.status_code
            headers = {"Idempotent-Replayed": "true"} if done.replayed else {}
        headers.update(self.location(run.pk, basename="run"))
        data = RunActionSerializer(run, context={"message": "Workflow execution started"}).data
        return Response(data, status=code, headers=headers)
