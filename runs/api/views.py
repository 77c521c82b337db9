import uuid

from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from core.api.viewsets import BaseViewSet
from core.roles import Role
from runs import services
from runs.api.serializers import (
    CancelSerializer,
    ExecuteSerializer,
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
from workflows.models import Workflow


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
    ),
    logs=extend_schema(
        summary="List a run's log entries",
        description="Structured entries from the API, the executor and the bridge, oldest first.",
        responses=RunLogSerializer(many=True),
        filters=True,
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
    cancel=extend_schema(
        summary="Cancel a pending or running run",
        description=(
            "The run is CANCELLED at once; no further step is dispatched. 409 when it already finished. "
            "The optional `reason` is kept on the run as `cancel_reason` (a retry clears it)."
        ),
        request=CancelSerializer,
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
    ordering_fields = ["created_at", "updated_at", "started_at", "completed_at", "status", "workflow_name"]
    ordering = ["-created_at"]
    action_roles = {
        "retry": Role.OPERATOR,
        "cancel": Role.OPERATOR,
        "respond": Role.OPERATOR,
        "steps": Role.VIEWER,
        "logs": Role.VIEWER,
    }
    extra_error_codes = {"retry": ["409"], "cancel": ["409"], "respond": ["409"]}

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
        queryset = DjangoFilterBackend().filter_queryset(self.request, self.get_queryset().filter(run_id=run_id), self)
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
    def cancel(self, request, pk=None):
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.run_cancel(run=self.get_object(), user=request.user, reason=serializer.validated_data["reason"])
        return Response(RunActionSerializer(run, context={"message": "Run cancelled"}).data, status=status.HTTP_200_OK)

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

    @extend_schema(
        summary="Run a workflow",
        description=(
            "202 at once with the PENDING run; the executor picks it up through Kafka (queued while Kafka is "
            "down). The input is checked against the workflow's `input_schema` (422 with `input_data.<path>`); "
            "an inactive workflow is 409, and so is one whose plan calls an agent that is deleted or inactive "
            "(anywhere, also inside parallel, conditional, loop and fork-join steps): the 409 names them. "
            "`Location` is the new run's URL."
        ),
        request=ExecuteSerializer,
        responses={202: RunActionSerializer},
    )
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None):
        workflow = self.get_object()
        serializer = ExecuteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.run_execute(
            workflow=workflow, input_data=serializer.validated_data["input_data"], user=request.user
        )
        headers = self.location(run.pk, basename="run")
        data = RunActionSerializer(run, context={"message": "Workflow execution started"}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers=headers)
