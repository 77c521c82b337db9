from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from audit.api.serializers import AuditEventSerializer
from audit.filtersets import AuditEventFilterSet
from audit.models import AuditEvent
from core.api.viewsets import BaseViewSet
from core.roles import Role


@extend_schema_view(
    list=extend_schema(
        summary="List audit events",
        tags=["audit"],
        description="Newest first. There are no write endpoints: the trail is append-only.",
    ),
    retrieve=extend_schema(summary="Get an audit event", tags=["audit"]),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]
    read_role = write_role = Role.ADMIN
