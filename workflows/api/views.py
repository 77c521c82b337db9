from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.viewsets import SoftDeleteViewSet
from core.roles import Role
from workflows import services
from workflows.api.serializers import (
    ValidateSerializer,
    ValidationResultSerializer,
    WorkflowSerializer,
    WorkflowSummarySerializer,
    WorkflowVersionSerializer,
)
from workflows.choices import WorkflowStatus
from workflows.filtersets import WorkflowFilterSet
from workflows.models import Workflow, WorkflowVersion

_VERSION = OpenApiParameter("version", int, OpenApiParameter.PATH, description="Version number, from 1.")


@extend_schema_view(
    list=extend_schema(
        summary="List workflows",
        description="Items leave out the steps (see `step_count`); get one workflow for its whole definition.",
        responses=WorkflowSummarySerializer(many=True),
    ),
    create=extend_schema(summary="Create a workflow", description="Validated as a whole before saving; version 1."),
    retrieve=extend_schema(summary="Get a workflow with its whole definition"),
    update=extend_schema(
        summary="Replace a workflow's definition",
        description="Saves a new version when the definition changes; earlier versions stay as they were.",
    ),
    partial_update=extend_schema(
        summary="Change part of a workflow's definition",
        description="The fields sent replace those of the current definition; a new version when anything changed.",
    ),
    destroy=extend_schema(summary="Delete a workflow", description="Soft delete: status becomes `deleted`."),
    versions=extend_schema(
        summary="List a workflow's versions",
        description="Newest first, each with its whole definition.",
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
    serializer_class = WorkflowSerializer
    filterset_class = WorkflowFilterSet
    action_roles = {"versions": Role.VIEWER, "version": Role.VIEWER, "validate": Role.VIEWER}

    def get_serializer_class(self):
        if self.action == "list":
            return WorkflowSummarySerializer
        return super().get_serializer_class()

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
        workflow = self.get_object()
        page = self.paginate_queryset(WorkflowVersion.objects.filter(workflow=workflow).order_by("-version"))
        return self.get_paginated_response(WorkflowVersionSerializer(page, many=True).data)

    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)")
    def version(self, request, pk=None, version=None):
        workflow = self.get_object()
        found = WorkflowVersion.objects.filter(
            Q(workflow=workflow), Q(version=version) if version.isdigit() else Q(pk=None)
        )
        item = found.first()
        if item is None:
            raise exceptions.NotFound(f"Workflow {workflow.name!r} has no version {version!r}.")
        return Response(WorkflowVersionSerializer(item).data)

    @action(detail=False, methods=["post"])
    def validate(self, request):
        serializer = ValidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(
            {"valid": True, "errors": [], "plan": serializer.validated_data["plan"]}, status=status.HTTP_200_OK
        )
