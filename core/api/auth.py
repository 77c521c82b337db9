from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import permissions
from rest_framework_simplejwt import views as jwt_views

from core.api.throttles import AuthRateThrottle

_TOKENS = {
    "access": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl",
    "refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl",
}


class _Public:
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthRateThrottle]
    # A wrong username or password, or a refresh token that is invalid or expired (core/api/schema.py).
    extra_error_codes = ["401"]


class TokenObtainView(_Public, jwt_views.TokenObtainPairView):
    @extend_schema(
        summary="Obtain a JWT pair",
        description="Exchange a username and password for an access token (Authorization: Bearer) and a refresh token.",
        tags=["auth"],
        examples=[
            OpenApiExample("Credentials", value={"username": "alice", "password": "correct horse"}, request_only=True),
            OpenApiExample("Tokens", value=_TOKENS, response_only=True),
        ],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshView(_Public, jwt_views.TokenRefreshView):
    @extend_schema(
        summary="Refresh a JWT access token",
        tags=["auth"],
        examples=[
            OpenApiExample("Refresh token", value={"refresh": _TOKENS["refresh"]}, request_only=True),
            OpenApiExample("New access token", value={"access": _TOKENS["access"]}, response_only=True),
        ],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
