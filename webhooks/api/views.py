from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.filters import FilterBackend
from core.api.viewsets import BaseViewSet
from core.roles import Role
from webhooks import services
from webhooks.api.serializers import DeliverySerializer, WebhookSerializer, WebhookWithSecretSerializer
from webhooks.filtersets import DeliveryFilterSet, WebhookEndpointFilterSet
from webhooks.models import Delivery, WebhookEndpoint

_DELIVERY_ID = OpenApiParameter("delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The delivery.")


@extend_schema_view(
    list=extend_schema(summary="List webhooks", tags=["webhooks"], description="Newest first. Secrets are not shown."),
    create=extend_schema(
        summary="Register a webhook",
        tags=["webhooks"],
        description=(
            "The response carries the signing `secret` (Standard Webhooks `whsec_...`) this once. The URL must be "
            "http(s) and, unless WEBHOOK_ALLOW_PRIVATE_URLS is on, resolve to public addresses only."
        ),
        responses={201: WebhookWithSecretSerializer},
    ),
    retrieve=extend_schema(summary="Get a webhook", tags=["webhooks"]),
    update=extend_schema(summary="Replace a webhook", tags=["webhooks"]),
    partial_update=extend_schema(
        summary="Update part of a webhook",
        tags=["webhooks"],
        description="Deactivating fails the deliveries still waiting; activating clears `disabled_reason`.",
    ),
    destroy=extend_schema(
        summary="Delete a webhook", tags=["webhooks"], description="Nothing more is sent; pending deliveries fail."
    ),
    rotate_secret=extend_schema(
        summary="Rotate a webhook's secret",
        tags=["webhooks"],
        description="A new secret, shown this once; every attempt from now on is signed with it.",
        request=None,
        responses={200: WebhookWithSecretSerializer},
    ),
    test=extend_schema(
        summary="Send a test ping",
        tags=["webhooks"],
        description=(
            '202: a `ping` (`{"type": "ping", "timestamp", "data": {"webhook_id"}}`) is sent to this webhook only, '
            "once, without retries; its result is in the deliveries."
        ),
        request=None,
        responses={202: DeliverySerializer},
    ),
    deliveries=extend_schema(
        summary="List a webhook's deliveries",
        tags=["webhooks"],
        description="Newest first, each with every attempt (status code, duration, the start of the response).",
        responses=DeliverySerializer(many=True),
        filters=True,
    ),
    redeliver=extend_schema(
        summary="Redeliver",
        tags=["webhooks"],
        description=(
            "202: the delivery is sent again with the same `webhook-id` (a new attempt, a fresh retry schedule). "
            "409 while it is being sent or when the webhook is inactive."
        ),
        parameters=[_DELIVERY_ID],
        request=None,
        responses={202: DeliverySerializer},
    ),
)
class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    BaseViewSet,
):
    serializer_class = WebhookSerializer
    read_role = write_role = Role.ADMIN
    ordering_fields = ["created_at", "updated_at", "url"]
    ordering = ["-created_at"]
    extra_error_codes = {"redeliver": ["409"]}

    @property
    def filterset_class(self):
        # One viewset, two lists: the schema and the filter backend both read this per action.
        return DeliveryFilterSet if self.action == "deliveries" else WebhookEndpointFilterSet

    def get_queryset(self):
        if self.action == "deliveries":
            return Delivery.objects.prefetch_related("attempts").order_by("-created_at", "-id")
        return WebhookEndpoint.objects.live()

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_create(user=request.user, data=serializer.validated_data)
        data = WebhookWithSecretSerializer(endpoint).data
        return Response(data, status=status.HTTP_201_CREATED, headers=self.location(endpoint.pk))

    def perform_update(self, serializer):
        serializer.instance = services.webhook_update(
            endpoint=serializer.instance, user=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.webhook_delete(endpoint=instance, user=self.request.user)

    def _endpoint(self) -> WebhookEndpoint:
        # The deliveries actions list another model: look the webhook up as a detail route would.
        try:
            return WebhookEndpoint.objects.live().get(pk=self.kwargs["pk"])
        except (WebhookEndpoint.DoesNotExist, ValidationError):
            raise exceptions.NotFound(f"Webhook {self.kwargs['pk']!r} not found.") from None

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = services.webhook_rotate_secret(endpoint=self.get_object(), user=request.user)
        return Response(WebhookWithSecretSerializer(endpoint).data)

    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = services.webhook_test(endpoint=self.get_object(), user=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        queryset = self.get_queryset().filter(endpoint=self._endpoint())
        queryset = FilterBackend().filter_queryset(request, queryset, self)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[^/.]+)/redeliver")
    def redeliver(self, request, pk=None, delivery_id=None):
        endpoint = self._endpoint()
        try:
            delivery = Delivery.objects.get(pk=delivery_id, endpoint=endpoint)
        except (Delivery.DoesNotExist, ValidationError):
            raise exceptions.NotFound(f"Delivery {delivery_id!r} not found.") from None
        delivery = services.delivery_redeliver(delivery=delivery, user=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
