"""CORS for browser clients (api.md, "Browser clients (CORS)"), through django-cors-headers."""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# Beyond django-cors-headers' defaults (accept, authorization, content-type, user-agent, x-csrftoken,
# x-requested-with): the API key header, idempotent POSTs and a client's own request id.
ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
    "x-api-key",
    "idempotency-key",
    "x-request-id",
)
EXPOSE_HEADERS = ("x-request-id",)
# The API and its schema; the admin, the doc pages and the probes are not for other origins.
URLS_REGEX = r"^/(api/|openapi\.json$)"


def allowed_origins(items: list[str]) -> list[str]:
    """`scheme://host[:port]` each, nothing after it: what a browser sends as its Origin."""
    origins = []
    for item in items:
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ImproperlyConfigured(
                f"CORS_ALLOWED_ORIGINS must be comma-separated origins such as https://app.example.com, got {item!r}"
            )
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins
