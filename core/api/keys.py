from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core import services
from core.api.serializers import StrictCharField, StrictModelSerializer, StrictSerializer
from core.api.viewsets import BaseViewSet
from core.models import ApiKey
from core.roles import Role

_KEY_EXAMPLE = {
    "id": "9b2d7c1e-3a4f-4e8b-9c0d-1e2f3a4b5c6d",
    "name": "ci-pipeline",
    "prefix": "Xy12AbCd",
    "role": "operator",
    "user": "ci-bot",
    "created_at": "2026-11-25T10:00:00Z",
    "created_by": "admin",
    "expires_at": "2027-02-23T10:00:00Z",
    "last_used_at": None,
    "revoked": False,
    "revoked_at": None,
}


@extend_schema_serializer(examples=[OpenApiExample("API key", value=_KEY_EXAMPLE, response_only=True)])
class ApiKeySerializer(StrictModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    # Null for keys made outside the API (a command, the admin) and for keys that never expire.
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    expires_at = serializers.DateTimeField(source="expiry_date", read_only=True, allow_null=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "user",
            "created_at",
            "created_by",
            "expires_at",
            "last_used_at",
            "revoked",
            "revoked_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Operator key for a bot, valid 90 days",
            value={"name": "ci-pipeline", "role": "operator", "user": "ci-bot", "expires_in_days": 90},
            request_only=True,
        ),
        OpenApiExample(
            "Created key (the only time `key` is shown)",
            value={**_KEY_EXAMPLE, "key": "Xy12AbCd.q9Wm3T7pLk2VbN8sR4zE6yU1cH5jF0aG"},
            response_only=True,
        ),
    ]
)
class ApiKeyCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=50)
    role = serializers.ChoiceField(choices=Role.choices)
    user = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        help_text="Username the key acts for; defaults to the caller.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value

    def validate(self, attrs):
        if attrs.get("expires_at") and attrs.get("expires_in_days"):
            raise serializers.ValidationError({"expires_in_days": ["Give expires_at or expires_in_days, not both."]})
        days = attrs.pop("expires_in_days", None)
        if days:
            attrs["expires_at"] = timezone.now() + timedelta(days=days)
        return attrs


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="List API keys", tags=["api-keys"]),
    retrieve=extend_schema(summary="Get an API key", tags=["api-keys"]),
    create=extend_schema(
        summary="Create an API key",
        tags=["api-keys"],
        description="The secret is in the response once and is stored only as a hash.",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
    ),
    revoke=extend_schema(
        summary="Revoke an API key",
        tags=["api-keys"],
        request=None,
        description="Takes effect on the next request. Revoking cannot be undone.",
        responses={200: ApiKeySerializer},
    ),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    queryset = ApiKey.objects.select_related("user", "created_by")
    serializer_class = ApiKeySerializer
    read_role = write_role = Role.ADMIN
    ordering_fields = ["created_at", "name", "last_used_at"]
    ordering = ["-created_at"]
    filterset_fields = ["revoked", "role"]
    extra_error_codes = {"revoke": ["409"]}

    def create(self, request):
        serializer = ApiKeyCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        api_key, raw = services.api_key_create(
            user=data.get("user") or request.user,
            role=data["role"],
            name=data["name"],
            expires_at=data.get("expires_at"),
            created_by=request.user,
        )
        api_key.key = raw
        return Response(
            ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED, headers=self.location(api_key.pk)
        )

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        api_key = services.api_key_revoke(api_key=self.get_object(), user=request.user)
        return Response(ApiKeySerializer(api_key).data)
