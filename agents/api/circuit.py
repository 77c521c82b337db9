"""The agent's circuit breaker in the API: its configuration (validated, with the older system's names
and defaults) and its state as the shared store has it (read-only)."""

import logging
import time
from datetime import UTC, datetime

from rest_framework import serializers

from agents import breaker
from agents.breaker_store import circuit_views
from core.api.serializers import StrictSerializer

log = logging.getLogger(__name__)
DEFAULTS = breaker.DEFAULT_CONFIG
UNKNOWN = "unknown"  # the store could not be read


class CircuitBreakerConfigSerializer(StrictSerializer):
    enabled = serializers.BooleanField(default=DEFAULTS["enabled"])
    failure_threshold = serializers.IntegerField(
        min_value=1,
        max_value=1000,
        default=DEFAULTS["failure_threshold"],
        help_text="Failures in a row that open the breaker; also the fewest calls in the window for the rate.",
    )
    failure_rate_threshold = serializers.FloatField(
        min_value=0.01,
        max_value=1.0,
        default=DEFAULTS["failure_rate_threshold"],
        help_text="Share of failed calls within the window (with at least failure_threshold calls) that opens it.",
    )
    window_size_seconds = serializers.IntegerField(
        min_value=1, max_value=86_400, default=DEFAULTS["window_size_seconds"]
    )
    timeout_seconds = serializers.IntegerField(
        min_value=1,
        max_value=86_400,
        default=DEFAULTS["timeout_seconds"],
        help_text="How long the breaker stays open before its half-open trial.",
    )
    half_open_max_calls = serializers.IntegerField(
        min_value=1,
        max_value=100,
        default=DEFAULTS["half_open_max_calls"],
        help_text="Trial calls at once while half-open: one success closes the breaker, one failure reopens it.",
    )


class CircuitStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[*breaker.STATES, UNKNOWN], help_text="closed, open, half_open; unknown when the store is away."
    )
    opened_at = serializers.DateTimeField(allow_null=True)
    retry_at = serializers.DateTimeField(allow_null=True, help_text="When an open breaker lets its trial calls in.")
    consecutive_failures = serializers.IntegerField()
    recent_calls = serializers.IntegerField(help_text="Calls counted within the window.")
    recent_failures = serializers.IntegerField(help_text="Failures among them.")
    last_error = serializers.CharField(allow_null=True)


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z") if epoch else None


def circuit_states(agents) -> dict:
    """agent pk -> its `circuit_state` representation, for all of them in one read of the store."""
    try:
        views = circuit_views(agents, time.time())
    except Exception:  # noqa: BLE001 - Redis away: the agents are still listed
        log.warning("circuit breaker store unavailable", exc_info=True)
        views = {agent.pk: {**breaker.view(None, breaker.DEFAULT_CONFIG, 0), "state": UNKNOWN} for agent in agents}
    return {
        pk: {**view, "opened_at": _iso(view["opened_at"]), "retry_at": _iso(view["retry_at"])}
        for pk, view in views.items()
    }


class AgentListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        agents = list(data.all() if hasattr(data, "all") else data)
        self.child.circuits = circuit_states(agents)
        return [self.child.to_representation(agent) for agent in agents]
