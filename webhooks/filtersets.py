import django_filters

from core.api.filters import FilterSet, MultipleChoiceFilter, StringListFilter
from webhooks.choices import DeliveryStatus
from webhooks.models import Delivery, WebhookEndpoint


class WebhookEndpointFilterSet(FilterSet):
    url = django_filters.CharFilter(
        field_name="url", lookup_expr="icontains", max_length=2048, help_text="Case-insensitive substring of the URL."
    )
    active = django_filters.BooleanFilter(field_name="active")
    workflow_id = django_filters.UUIDFilter(field_name="workflow_id")

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "active", "workflow_id"]


class DeliveryFilterSet(FilterSet):
    status = MultipleChoiceFilter(choices=DeliveryStatus.choices, help_text="One or more, e.g. FAILED,RETRYING.")
    event_type = StringListFilter(field_name="event_type", max_length=32, help_text="One or more, e.g. run.failed.")
    run_id = django_filters.UUIDFilter(field_name="run_id")

    class Meta:
        model = Delivery
        fields = ["status", "event_type", "run_id"]
