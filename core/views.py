from django.conf import settings
from django.utils.crypto import constant_time_compare
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.exceptions import error_body
from core.api.serializers import ErrorSerializer
from core.health import readiness


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
