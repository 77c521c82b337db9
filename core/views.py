from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.about import PLATFORM_NAME, platform_version
from core.api.exceptions import error_body
from core.api.renderers import JSONRenderer
from core.api.serializers import ErrorSerializer
from core.health import readiness
from core.roles import Role


class DependencyCheckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"])
    latency_ms = serializers.FloatField()
    error = serializers.CharField(required=False)


class ReadinessSerializer(serializers.Serializer):
    status = serializers.CharField()
    checks = serializers.DictField(child=DependencyCheckSerializer())


class NotReadySerializer(ErrorSerializer):
    """The usual error body plus the checks."""

    status = serializers.CharField()
    checks = serializers.DictField(child=DependencyCheckSerializer())


class _PublicView(APIView):
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    renderer_classes = [JSONRenderer]


class LivenessView(_PublicView):
    @extend_schema(
        summary="Liveness",
        description="Answers while the process serves requests. Touches no dependency.",
        tags=["system"],
        responses={
            200: inline_serializer("Liveness", {"status": serializers.CharField()}),
        },
        examples=[OpenApiExample("Alive", value={"status": "ok"}, response_only=True)],
    )
    def get(self, request):
        return Response({"status": "ok"})


class ReadinessView(_PublicView):
    @extend_schema(
        summary="Readiness",
        description=(
            "Checks the database and every configured dependency (Redis when REDIS_URL is set, "
            "Kafka when KAFKA_BOOTSTRAP_SERVERS is set). 503 names the failing check; why it failed is "
            "in the server log (the answer is public: it shows no host names or error text)."
        ),
        tags=["system"],
        responses={
            (200, "application/json"): ReadinessSerializer,
            (503, "application/json"): NotReadySerializer,
        },
        examples=[
            OpenApiExample(
                "Ready",
                value={
                    "status": "ok",
                    "checks": {"database": {"status": "ok", "vendor": "postgresql", "latency_ms": 0.8}},
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Database down",
                value={
                    "error": "service_unavailable",
                    "detail": "Not ready: database unavailable.",
                    "status_code": 503,
                    "timestamp": "2026-11-25T10:00:00Z",
                    "path": "/health/ready",
                    "request_id": "6c1e0f7d2b9a4e51a7c3",
                    "status": "unavailable",
                    "checks": {
                        "database": {
                            "status": "error",
                            "error": "unavailable",
                            "latency_ms": 3.1,
                        }
                    },
                },
                response_only=True,
                status_codes=["503"],
            ),
        ],
    )
    def get(self, request):
        ready, checks = readiness()
        if ready:
            return Response({"status": "ok", "checks": checks})
        failing = ", ".join(name for name, check in checks.items() if check["status"] != "ok")
        # The usual error body, plus the checks, so probes and people both see what is down.
        body = error_body(request, 503, f"Not ready: {failing} unavailable.")
        return Response({**body, "status": "unavailable", "checks": checks}, status=503)


def metrics_view(request):
    """Prometheus metrics; protected by METRICS_TOKEN when that setting is set."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not constant_time_compare(given.strip(), token):
            from django.http import JsonResponse

            response = JsonResponse(error_body(request, 401, "A valid metrics token is required."), status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return ExportToDjangoView(request)


# The API root's resources: (name, URL name, the role that may read it). Reading the list needs no role:
# it shows what /openapi.json (public too) already does; each resource still asks for its own role.
API_RESOURCES = [
    ("agents", "agent-list", Role.VIEWER),
    ("workflows", "workflow-list", Role.VIEWER),
    ("runs", "run-list", Role.VIEWER),
    ("events", "events", Role.VIEWER),
    ("schedules", "schedule-list", Role.VIEWER),
    ("webhooks", "webhook-list", Role.ADMIN),
    ("audit_logs", "audit-log-list", Role.ADMIN),
    ("api_keys", "api-key-list", Role.ADMIN),
]
SYSTEM_LINKS = [
    ("auth_token", "auth-token"),
    ("auth_token_refresh", "auth-token-refresh"),
    ("docs", "docs"),
    ("redoc", "redoc"),
    ("openapi", "openapi"),
    ("health", "health"),
    ("health_ready", "health-ready"),
]


def _path(name: str) -> str:
    # Our paths have no trailing slash; the patterns that also take one reverse with it.
    path = reverse(name)
    return path.rstrip("/") or "/"


class ApiRootView(APIView):
    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="API root",
        description=(
            "The resources of this API with their URLs and the role each needs to be read, plus the "
            "token endpoints, the docs and the health checks. Public: it tells no more than /openapi.json."
        ),
        tags=["system"],
        responses={
            200: inline_serializer(
                "ApiRoot",
                {
                    "name": serializers.CharField(),
                    "version": serializers.CharField(),
                    "api_version": serializers.CharField(),
                    "resources": serializers.DictField(
                        child=inline_serializer(
                            "ApiResource", {"url": serializers.URLField(), "role": serializers.CharField()}
                        )
                    ),
                    "links": serializers.DictField(child=serializers.URLField()),
                },
            )
        },
        examples=[
            OpenApiExample(
                "Root",
                value={
                    "name": PLATFORM_NAME,
                    "version": "0.1.0",
                    "api_version": "1.0.0",
                    "resources": {
                        "agents": {"url": "https://wf.example.com/api/v1/agents", "role": "viewer"},
                        "webhooks": {"url": "https://wf.example.com/api/v1/webhooks", "role": "admin"},
                    },
                    "links": {
                        "auth_token": "https://wf.example.com/api/v1/auth/token",
                        "docs": "https://wf.example.com/docs",
                        "health": "https://wf.example.com/health",
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        url = request.build_absolute_uri
        return Response(
            {
                "name": PLATFORM_NAME,
                "version": platform_version(),
                "api_version": settings.SPECTACULAR_SETTINGS["VERSION"],
                "resources": {
                    name: {"url": url(_path(route)), "role": role.value} for name, route, role in API_RESOURCES
                },
                "links": {name: url(_path(route)) for name, route in SYSTEM_LINKS},
            }
        )


def landing_view(request):
    """`/`: what this server offers, for a person who opens it in a browser."""
    context = {
        "name": PLATFORM_NAME,
        "version": platform_version(),
        "api_version": settings.SPECTACULAR_SETTINGS["VERSION"],
        "links": [
            ("Admin", reverse("admin:index"), "Operate the platform: agents, workflows, runs, schedules, webhooks."),
            ("API root", reverse("api-root"), "The REST API's resources (JSON)."),
            ("API docs", reverse("docs"), "Swagger UI: try the API from the browser."),
            ("ReDoc", reverse("redoc"), "The API reference."),
            ("OpenAPI schema", reverse("openapi"), "The machine-readable contract."),
            ("Health", _path("health"), "Liveness; readiness of the dependencies at /health/ready."),
        ],
    }
    return render(request, "core/landing.html", context)
