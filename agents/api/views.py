from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.api.serializers import AgentHealthSerializer, AgentSerializer
from agents.card import agent_check_health
from agents.choices import LIVE_STATUSES
from agents.filtersets import AgentFilterSet
from agents.models import Agent
from core.api.viewsets import SoftDeleteViewSet
from core.roles import Role

_HEALTH_EXAMPLE = {
    "agent_id": "3f1c2a55-6b1d-4d8e-9a57-0c4f7e2b1a10",
    "status": "healthy",
    "checked_at": "2026-11-25T10:00:00Z",
    "latency_ms": 12.4,
    "card_url": "http://agents.internal:9001/.well-known/agent-card.json",
    "http_status": 200,
    "card": {"name": "Summarizer", "version": "1.0.0", "skills": [{"id": "summarize", "name": "Summarize"}]},
    "error": None,
    "timestamp": "2026-11-25T10:00:00Z",
    "response_time_ms": 12,
    "agent_card": {"name": "Summarizer", "version": "1.0.0", "skills": [{"id": "summarize", "name": "Summarize"}]},
    "message": "Agent is responding",
}
_PUT_KEEPS = (
    "Fields left out keep their values (as in the older API, whose web UI sends only what it edits), so PUT "
    "and PATCH behave alike; a field sent replaces its value. `auth_config: null` means `{}`."
)


@extend_schema_view(
    list=extend_schema(summary="List agents", description="Deleted agents are hidden unless `status=deleted`."),
    create=extend_schema(summary="Register an agent"),
    retrieve=extend_schema(summary="Get an agent"),
    update=extend_schema(
        summary="Update an agent's configuration", description=_PUT_KEEPS, request=AgentSerializer(partial=True)
    ),
    partial_update=extend_schema(summary="Update part of an agent's configuration", description=_PUT_KEEPS),
    destroy=extend_schema(
        summary="Delete an agent",
        description="Soft delete: status becomes `deleted`, the agent can no longer be used, and its name is free.",
    ),
    health=extend_schema(
        summary="Check an agent's health",
        description=(
            "Fetches the agent card (`/.well-known/agent-card.json`, then `/.well-known/agent.json`, under the "
            "agent URL's path, then at its origin; the URL's query and fragment are not used) with the agent's "
            "auth, within the agent's timeout but at most `AGENT_HEALTH_TIMEOUT_SECONDS` (default 5) in all, "
            "and reports status, latency and the card's own fields (nothing else of what was fetched). "
            "The older API's fields are there too: `timestamp` (= `checked_at`), `response_time_ms` (whole ms, "
            "null when the agent did not answer), `agent_card` (= `card`) and `message` (the card's "
            "description when healthy, else the error)."
        ),
        responses={200: AgentHealthSerializer},
        examples=[OpenApiExample("Healthy", value=_HEALTH_EXAMPLE, response_only=True)],
    ),
)
class AgentViewSet(SoftDeleteViewSet):
    queryset = Agent.objects.all()
    live_statuses = LIVE_STATUSES
    serializer_class = AgentSerializer
    filterset_class = AgentFilterSet
    versioned_total = True  # a trigger versions the table: totals are reused while it is unchanged
    action_roles = {"health": Role.VIEWER}

    def perform_create(self, serializer):
        serializer.instance = services.agent_create(user=self.request.user, data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.agent_update(
            agent=serializer.instance, user=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.agent_delete(agent=instance, user=self.request.user)

    @action(detail=True, methods=["get"])
    def health(self, request, pk=None):
        report = with_older_fields(agent_check_health(agent=self.get_object()))
        return Response(AgentHealthSerializer(report).data, status=status.HTTP_200_OK)


def with_older_fields(report: dict) -> dict:
    """Adds the older API's names for the health report: its web UI reads only those."""
    card = report["card"]
    description = (card or {}).get("description")
    if report["status"] != "healthy":
        message = report["error"]
    else:
        message = description if isinstance(description, str) and description else "Agent is responding"
    answered = report["http_status"] is not None and report["latency_ms"] is not None
    return {
        **report,
        "timestamp": report["checked_at"],
        "response_time_ms": round(report["latency_ms"]) if answered else None,
        "agent_card": card,
        "message": message,
    }
