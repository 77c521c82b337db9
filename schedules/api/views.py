from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from core.api.viewsets import BaseViewSet
from schedules import services
from schedules.api.serializers import ScheduleSerializer
from schedules.filtersets import ScheduleFilterSet
from schedules.models import Schedule

_RULES = (
    "An invalid `cron` (five fields) or `timezone` (IANA) is a 422, and so is an `input_data` the workflow's "
    "`input_schema` refuses; a deleted workflow is a 422 on `workflow_id`, an inactive one a 409 unless the "
    "schedule is inactive; a name in use is a 409."
)


@extend_schema_view(
    list=extend_schema(summary="List schedules", tags=["schedules"], description="Newest first."),
    create=extend_schema(
        summary="Create a schedule",
        tags=["schedules"],
        description=f"Celery beat starts a run at each due time (`triggered_by: schedule:<name>`). {_RULES}",
    ),
    retrieve=extend_schema(summary="Get a schedule", tags=["schedules"]),
    update=extend_schema(summary="Replace a schedule", tags=["schedules"], description=_RULES),
    partial_update=extend_schema(
        summary="Update part of a schedule",
        tags=["schedules"],
        description=f"Activating clears `last_error` and plans the next due time from now. {_RULES}",
    ),
    destroy=extend_schema(summary="Delete a schedule", tags=["schedules"], description="Nothing more is started."),
)
class ScheduleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    BaseViewSet,
):
    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilterSet
    ordering_fields = ["name", "created_at", "updated_at", "next_run_at"]
    ordering = ["-created_at"]
    extra_error_codes = {"create": ["409"], "update": ["409"], "partial_update": ["409"]}

    def get_queryset(self):
        return Schedule.objects.live()

    def get_success_headers(self, data):
        return self.location(data["id"]) if isinstance(data, dict) and data.get("id") else {}

    def perform_create(self, serializer):
        serializer.instance = services.schedule_create(user=self.request.user, data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.schedule_update(
            schedule=serializer.instance, user=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.schedule_delete(schedule=instance, user=self.request.user)
