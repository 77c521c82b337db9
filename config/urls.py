from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.views import LivenessView, ReadinessView, metrics_view

api_v1 = [
    path("", include("core.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("workflows.api.urls")),
    path("", include("runs.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("audit.api.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    re_path(r"^health/?$", LivenessView.as_view(), name="health"),
    re_path(r"^health/ready/?$", ReadinessView.as_view(), name="health-ready"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="openapi"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "core.api.exceptions.json_bad_request"
handler403 = "core.api.exceptions.json_forbidden"
handler404 = "core.api.exceptions.json_not_found"
handler500 = "core.api.exceptions.json_server_error"
