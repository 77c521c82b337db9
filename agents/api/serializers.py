from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from agents import breaker
from agents.api import circuit
from agents.api.circuit import CircuitBreakerConfigSerializer, CircuitStateSerializer, circuit_states
from agents.api.fields import AgentURLField
from agents.choices import DEFAULT_RETRY_CONFIG, MASK, SECRET_AUTH_KEYS, AgentStatus, AuthType
from agents.models import MAX_CONCURRENCY_LIMIT, Agent
from agents.policy import retry_policy
from core.api.serializers import StrictModelSerializer, StrictSerializer, iso_datetime

_AUTH_FIELDS = {
    AuthType.NONE: {},
    AuthType.BEARER: {"token": True},
    AuthType.APIKEY: {"key": True, "header_name": False},
}
DEFAULT_APIKEY_HEADER = "X-API-Key"


class RetryConfigSerializer(StrictSerializer):
    max_retries = serializers.IntegerField(min_value=0, max_value=10, default=DEFAULT_RETRY_CONFIG["max_retries"])
    initial_delay_ms = serializers.IntegerField(
        min_value=0, max_value=600_000, default=DEFAULT_RETRY_CONFIG["initial_delay_ms"]
    )
    max_delay_ms = serializers.IntegerField(
        min_value=0, max_value=3_600_000, default=DEFAULT_RETRY_CONFIG["max_delay_ms"]
    )
    backoff_multiplier = serializers.FloatField(
        min_value=1.0, max_value=10.0, default=DEFAULT_RETRY_CONFIG["backoff_multiplier"]
    )


@extend_schema_field(
    {
        "type": "object",
        "description": (
            "Depends on auth_type. none: {}. bearer: {token}. apikey: {key, header_name (default "
            "X-API-Key)}. Secrets are write-only: responses show them as '********', and sending "
            "'********' back keeps the stored secret."
        ),
        "example": {"token": MASK},
    }
)
class AuthConfigField(serializers.JSONField):
    def to_representation(self, value):
        return mask_auth_config(value)


def mask_auth_config(value) -> dict:
    return {key: (MASK if key in SECRET_AUTH_KEYS and item else item) for key, item in (value or {}).items()}


_AGENT_EXAMPLE = {
    "id": "3f1c2a55-6b1d-4d8e-9a57-0c4f7e2b1a10",
    "name": "summarizer",
    "url": "http://agents.internal:9001/",
    "description": "Summarises documents.",
    "auth_type": "bearer",
    "auth_config": {"token": MASK},
    "timeout_ms": 30000,
    "retry_config": DEFAULT_RETRY_CONFIG,
    "max_concurrency": None,
    "circuit_breaker_config": breaker.DEFAULT_CONFIG,
    "circuit_state": {
        "state": "closed",
        "opened_at": None,
        "retry_at": None,
        "consecutive_failures": 0,
        "recent_calls": 12,
        "recent_failures": 1,
        "last_error": "Agent returned HTTP 503",
    },
    "status": "active",
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-25T10:00:00Z",
    "created_by": "alice",
    "updated_by": "alice",
}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Bearer-protected agent",
            request_only=True,
            value={
                "name": "summarizer",
                "url": "http://agents.internal:9001/",
                "description": "Summarises documents.",
                "auth_type": "bearer",
                "auth_config": {"token": "s3cr3t-token"},
                "timeout_ms": 30000,
                "retry_config": {"max_retries": 3, "initial_delay_ms": 1000},
                "max_concurrency": 4,
            },
        ),
        OpenApiExample("Agent", response_only=True, value=_AGENT_EXAMPLE),
    ]
)
class AgentSerializer(StrictModelSerializer):
    url = AgentURLField(max_length=2048, help_text="Base URL of the agent's A2A endpoint (http or https).")
    auth_config = AuthConfigField(required=False, allow_null=True)  # null (the older UI's "none") is {}
    timeout_ms = serializers.IntegerField(min_value=1000, max_value=300_000, required=False)
    retry_config = RetryConfigSerializer(required=False)
    max_concurrency = serializers.IntegerField(
        min_value=1,
        max_value=MAX_CONCURRENCY_LIMIT,
        allow_null=True,
        required=False,
        help_text=(
            "Calls to this agent in flight at once, per bridge process (N bridges allow N times as many); "
            "further tasks wait for a turn. null (the default): no limit."
        ),
    )
    circuit_breaker_config = CircuitBreakerConfigSerializer(
        required=False,
        allow_null=True,
        help_text="The agent's circuit breaker (docs/execution.md). Missing keys take the defaults; null resets all.",
    )
    circuit_state = CircuitStateSerializer(read_only=True, help_text="The breaker as every bridge sees it now.")
    status = serializers.ChoiceField(
        choices=[AgentStatus.ACTIVE, AgentStatus.INACTIVE],
        required=False,
        help_text="active or inactive; DELETE sets deleted.",
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "url",
            "description",
            "auth_type",
            "auth_config",
            "timeout_ms",
            "retry_config",
            "max_concurrency",
            "circuit_breaker_config",
            "circuit_state",
            "status",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "created_by", "updated_by"]
        list_serializer_class = circuit.AgentListSerializer  # reads every listed agent's breaker state at once
        # The name must be unique among non-deleted agents only: the service checks it (409).
        validators = []
        extra_kwargs = {"name": {"validators": []}, "description": {"max_length": 10_000}}

    def to_representation(self, agent):
        # Written out rather than walked field by field: lists render hundreds of these, and DRF's
        # generic path costs several times more. tests/agents check it matches the declared fields.
        return {
            "id": str(agent.id),
            "name": agent.name,
            "url": agent.url,
            "description": agent.description,
            "auth_type": agent.auth_type,
            "auth_config": mask_auth_config(agent.auth_config),
            "timeout_ms": agent.timeout_ms,
            "retry_config": agent.retry_config,
            "max_concurrency": agent.max_concurrency,
            "circuit_breaker_config": breaker.config_of(agent.circuit_breaker_config),
            "circuit_state": (getattr(self, "circuits", None) or circuit_states([agent]))[agent.pk],
            "status": agent.status,
            "created_at": iso_datetime(agent.created_at),
            "updated_at": iso_datetime(agent.updated_at),
            "created_by": agent.created_by,
            "updated_by": agent.updated_by,
        }

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("Must not be blank.", code="blank")
        return value.strip()

    def validate_url(self, value):
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Must be an http or https URL.", code="invalid")
        return value

    def validate(self, attrs):
        instance = self.instance
        auth_type = attrs.get("auth_type", instance.auth_type if instance else AuthType.NONE)
        if "auth_config" in attrs or "auth_type" in attrs or instance is None:
            given = attrs.get("auth_config")
            if (
                given is None
                and "auth_config" not in attrs
                and instance is not None
                and instance.auth_type == auth_type
            ):
                given = mask_auth_config(instance.auth_config)  # kept by the service, unless the URL moves
            previous = instance.auth_config if instance and instance.auth_type == auth_type else {}
            attrs["auth_config"] = _clean_auth_config(auth_type, given or {}, previous)
        if "retry_config" in attrs:
            stored = instance.retry_config if self.partial and instance is not None else None
            merged = retry_policy(stored, attrs["retry_config"])
            if merged["max_delay_ms"] < merged["initial_delay_ms"]:
                raise serializers.ValidationError(
                    {"retry_config": {"max_delay_ms": ["Must be at least initial_delay_ms."]}}
                )
            attrs["retry_config"] = merged
        if attrs.get("circuit_breaker_config") is not None:
            stored = instance.circuit_breaker_config if self.partial and instance is not None else None
            attrs["circuit_breaker_config"] = breaker.config_of({**(stored or {}), **attrs["circuit_breaker_config"]})
        return attrs


def _clean_auth_config(auth_type: str, given, previous: dict) -> dict:
    """Validates auth_config for its auth_type. A masked secret sent back stays masked when one is stored:
    the service keeps the stored one, unless the URL moves to another origin (agents.services)."""
    if not isinstance(given, dict):
        raise serializers.ValidationError({"auth_config": ["Must be a JSON object."]})
    spec = _AUTH_FIELDS[AuthType(auth_type)]
    errors = {}
    for key in given:
        if key not in spec:
            errors[key] = [f"Not allowed when auth_type is {auth_type!r}."]
    cleaned = {}
    for key, required in spec.items():
        value = given.get(key)
        if key in SECRET_AUTH_KEYS and value == MASK:
            if previous.get(key):
                cleaned[key] = MASK
                continue
            value = None
        if value is None or value == "":
            if required:
                errors[key] = [f"Required when auth_type is {auth_type!r}."]
            continue
        if not isinstance(value, str):
            errors[key] = ["Must be a string."]
        elif len(value) > 4096:
            errors[key] = ["Must be at most 4096 characters."]
        elif any(ch in value for ch in "\r\n"):
            errors[key] = ["Must not contain line breaks."]
        else:
            cleaned[key] = value
    if auth_type == AuthType.APIKEY and "header_name" not in errors:
        cleaned.setdefault("header_name", DEFAULT_APIKEY_HEADER)
    if errors:
        raise serializers.ValidationError({"auth_config": errors})
    return cleaned


class AgentHealthSerializer(serializers.Serializer):
    agent_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    checked_at = serializers.DateTimeField()
    latency_ms = serializers.FloatField(allow_null=True)
    card_url = serializers.CharField(allow_null=True, help_text="Where the agent card was found or last looked for.")
    http_status = serializers.IntegerField(allow_null=True)
    card = serializers.DictField(allow_null=True, help_text="The agent card (A2A AgentCard) when one was fetched.")
    error = serializers.CharField(allow_null=True)
    # The older API's names for the same report (its web UI reads these).
    timestamp = serializers.DateTimeField(help_text="Same as checked_at (the older API's name).")
    response_time_ms = serializers.IntegerField(
        allow_null=True, help_text="Whole milliseconds until the agent answered; null when it did not answer."
    )
    agent_card = serializers.DictField(allow_null=True, help_text="Same as card (the older API's name).")
    message = serializers.CharField(
        allow_null=True, help_text="Healthy: the card's description (or 'Agent is responding'); else the error."
    )
