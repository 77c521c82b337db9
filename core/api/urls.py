from django.urls import re_path

from core.api.auth import TokenObtainView, TokenRefreshView
from core.api.keys import ApiKeyViewSet
from core.api.viewsets import Router

router = Router()
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    re_path(r"^auth/token/?$", TokenObtainView.as_view(), name="auth-token"),
    re_path(r"^auth/token/refresh/?$", TokenRefreshView.as_view(), name="auth-token-refresh"),
    *router.urls,
]
