from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.fields import FIELDS_PARAM, fields_requested, trimmed
from core.api.viewsets import SoftDeleteViewSet
from core.roles import Role
from workflows import services
from workflows.api.serializers import (
    DEFINITION_BACKED,
    LIST_FIELDS,
    ValidateSerializer,
    ValidationResultSerializer,
    WorkflowSerializer,
    WorkflowSummarySerializer,
    WorkflowVersionSerializer,
)
from workflows.choices import WorkflowStatus
from workflows.filtersets import WorkflowFilterSet
from workflows.models import LIVE_STATUSES, Workflow, WorkflowVersion

_VERSION = OpenApiParameter("version", int, OpenApiParameter.PATH, description="Version number, from 1.")
_FIELDS = OpenApiParameter(
    FIELDS_PARAM,
    str,
    description=f"Comma-separated fields to keep in each item (unknown: 422). Any of: {', '.join(LIST_FIELDS)}.",
)
VERSION_FIELDS = [name for name, field in WorkflowVersionSerializer().fields.items() if not field.write_only]
_VERSION_FIELDS = OpenApiParameter(
    FIELDS_PARAM, str, description=f"Comma-separated fields to keep in each item. Any of: {', '.join(VERSION_FIELDS)}."
)
_PUT_KEEPS = (
    "Fields left out keep their values (as in the older API, whose web UI sends no `name` when it edits), so "
    "PUT and PATCH behave alike: the fields sent replace those of the current definition. Saves a new "
    "version when the definition changes; earlier versions stay as they were."
)


@extend_schema_view(
    list=extend_schema(
        summary="List workflows",
        description=(
            "Items carry the definition in `workflow_data` (as the older API's list did) but not the top-level "
            "`steps` and `input_schema`; `?fields=id,name,version` trims them to what a client needs."
        ),
        parameters=[_FIELDS],
        responses=WorkflowSummarySerializer(many=True),
    ),
    create=extend_schema(summary="Create a workflow", description="Validated as a whole before saving; version 1."),
    retrieve=extend_schema(summary="Get a workflow with its whole definition"),
    update=extend_schema(
        summary="Update a workflow's definition", description=_PUT_KEEPS, request=WorkflowSerializer(partial=True)
    ),
    partial_update=extend_schema(summary="Change part of a workflow's definition", description=_PUT_KEEPS),
    destroy=extend_schema(summary="Delete a workflow", description="Soft delete: status becomes `deleted`."),
    versions=extend_schema(
        summary="List a workflow's versions",
        description=(
            "Newest first, each a whole workflow as it was at that version (`id` is the workflow's, `version`, "
            "`workflow_data` and `created_*` the version's), as the older API answered."
        ),
        parameters=[_VERSION_FIELDS],
        responses=WorkflowVersionSerializer(many=True),
    ),
    version=extend_schema(
        summary="Get one version of a workflow", parameters=[_VERSION], responses=WorkflowVersionSerializer
    ),
    validate=extend_schema(
        summary="Validate a definition without saving it",
        description="200 with `valid: true` and the normalised plan, or 422 listing every problem.",
        request=ValidateSerializer,
        responses={200: ValidationResultSerializer},
    ),
)
class WorkflowViewSet(SoftDeleteViewSet):
    queryset = Workflow.objects.all()
    live_statuses = LIVE_STATUSES
    serializer_class = WorkflowSerializer
    filterset_class = WorkflowFilterSet
    versioned_total = True  # a trigger versions the table: totals are reused while it is unchanged
    action_roles = {"versions": Role.VIEWER, "version": Role.VIEWER, "validate": Role.VIEWER}

    def get_serializer_class(self):
        if self.action == "list":
            return WorkflowSummarySerializer
        return super().get_serializer_class()

    def list(self, request, *args, **kwargs):
        fields = fields_requested(request, LIST_FIELDS)
        queryset = self.filter_queryset(self.get_queryset())
        if fields is not None and not DEFINITION_BACKED & set(fields):
            queryset = queryset.defer("definition")  # the largest column, and nothing asked for needs it
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(trimmed(self.get_serializer(page, many=True).data, fields))

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.workflow_create(
            user=self.request.user, definition=data["plan"], status=data.get("status", WorkflowStatus.ACTIVE)
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.workflow_update(
            workflow=serializer.instance, user=self.request.user, definition=data["plan"], status=data.get("status")
        )

    def perform_destroy(self, instance):
        services.workflow_delete(workflow=instance, user=self.request.user)

    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        fields = fields_requested(request, VERSION_FIELDS)
        workflow = self.get_object()
        page = self.paginate_queryset(WorkflowVersion.objects.filter(workflow=workflow).order_by("-version"))
        data = WorkflowVersionSerializer(page, many=True, context={"workflow": workflow}).data
        return self.get_paginated_response(trimmed(data, fields))

    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)")
    def version(self, request, pk=None, version=None):
        workflow = self.get_object()
        found = WorkflowVersion.objects.filter(
            Q(workflow=workflow), Q(version=version) if version.isdigit() else Q(pk=None)
        )
        item = found.first()
        if item is None:
            raise exceptions.NotFound(f"Workflow {workflow.name!r} has no version {version!r}.")
        return Response(WorkflowVersionSerializer(item, context={"workflow": workflow}).data)

    @action(detail=False, methods=["post"])
    def validate(self, request):
        serializer = ValidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(
            {"valid": True, "errors": [], "plan": serializer.validated_data["plan"]}, status=status.HTTP_200_OK
        )
