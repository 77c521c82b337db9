from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.api.serializers import AgentHealthSerializer, AgentSerializer
from agents.card import agent_check_health
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
}


@extend_schema_view(
    list=extend_schema(summary="List agents", description="Deleted agents are hidden unless `status=deleted`."),
    create=extend_schema(summary="Register an agent"),
    retrieve=extend_schema(summary="Get an agent"),
    update=extend_schema(summary="Replace an agent's configuration"),
    partial_update=extend_schema(summary="Update part of an agent's configuration"),
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
            "and reports status, latency and the card's own fields (nothing else of what was fetched)."
        ),
        responses={200: AgentHealthSerializer},
        examples=[OpenApiExample("Healthy", value=_HEALTH_EXAMPLE, response_only=True)],
    ),
)
class AgentViewSet(SoftDeleteViewSet):
    queryset = Agent.objects.all()
    serializer_class = AgentSerializer
    filterset_class = AgentFilterSet
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
        report = agent_check_health(agent=self.get_object())
        return Response(AgentHealthSerializer(report).data, status=status.HTTP_200_OK)
