from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.api.throttles import login_throttled
from core.views import ApiRootView, LivenessView, ReadinessView, landing_view, metrics_view

api_v1 = [
    path("", include("core.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("workflows.api.urls")),
    path("", include("runs.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("schedules.api.urls")),
    path("", include("audit.api.urls")),
]

# The admin's "View site" link: the landing page.
admin.site.site_url = "/"

urlpatterns = [
    path("", landing_view, name="landing"),
    re_path(r"^api/v1/?$", ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include(api_v1)),
    re_path(r"^health/?$", LivenessView.as_view(), name="health"),
    re_path(r"^health/ready/?$", ReadinessView.as_view(), name="health-ready"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    # Our template: drf-spectacular's without its Google Fonts (nothing of ours loads from another host).
    path("redoc", SpectacularRedocView.as_view(url_name="openapi", template_name="core/redoc.html"), name="redoc"),
    # The two login forms, ahead of the includes that also name them: password guesses there spend the
    # same budget per client as the token endpoint (core/api/throttles.py).
    path("api-auth/login/", login_throttled(LoginView.as_view(template_name="rest_framework/login.html"))),
    path("admin/login/", login_throttled(admin.site.login)),
    path("api-auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "core.api.exceptions.json_bad_request"
handler403 = "core.api.exceptions.json_forbidden"
handler404 = "core.api.exceptions.json_not_found"
handler500 = "core.api.exceptions.json_server_error"
