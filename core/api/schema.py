"""OpenAPI generation: every operation gets its error responses, role and security documented."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import permissions as drf_permissions

from core.api.serializers import ErrorSerializer
from core.permissions import HasRole, required_role

_DESCRIPTIONS = {
    "401": "Missing, invalid, expired or revoked credentials.",
    "403": "Authenticated, but the role does not allow this action; `detail` names the role it needs.",
    "404": "No such resource (or it was deleted).",
    "409": "Conflicts with the current state (e.g. a duplicate name).",
    "415": "The body is not JSON: send it with `Content-Type: application/json` (forms and multipart are refused).",
    "422": "Validation failed; `errors` lists each problem with its field path.",
    "429": "Too many attempts from this address; `Retry-After` gives the seconds to wait.",
    "500": "Unexpected server error; logged with the request id.",
}

_EXAMPLES = {
    "401": {"error": "not_authenticated", "detail": "Authentication credentials were not provided."},
    "403": {"error": "permission_denied", "detail": "This action needs the editor role; your role is viewer"},
    "404": {"error": "not_found", "detail": "Agent '3f1c2a55-0000-4000-8000-000000000000' not found."},
    "409": {"error": "conflict", "detail": "An agent named 'summarizer' already exists."},
    "415": {
        "error": "unsupported_media_type",
        "detail": "Unsupported media type 'text/plain'. Send the body as JSON with Content-Type: application/json.",
    },
    "422": {
        "error": "validation_error",
        "detail": "Request validation failed",
        "errors": [{"field": "url", "message": "Enter a valid URL.", "type": "invalid"}],
    },
    "429": {"error": "throttled", "detail": "Too many login attempts from this address. Try again in 42 seconds."},
    "500": {
        "error": "internal_error",
        "detail": "An unexpected error occurred. Quote the request id when reporting it.",
    },
}


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self._error_codes(path, method):
            responses.setdefault(code, self._error_response(code, path))
        role = self._role()
        if role is not None:
            note = f"Requires role **{role.value}** or higher."
            operation["description"] = f"{operation.get('description', '').strip()}\n\n{note}".strip()
        return operation

    def _role(self):
        if not any(isinstance(p, HasRole) for p in self.view.get_permissions()):
            return None
        return required_role(self.view, self.view.request)

    def _error_codes(self, path, method) -> list[str]:
        codes = []
        perms = self.view.get_permissions()
        public = all(isinstance(p, drf_permissions.AllowAny) for p in perms)
        if not public:
            codes += ["401", "403"]
        if "{" in path:
            codes.append("404")
        if method in ("POST", "PUT", "PATCH") or self._is_list_view():
            codes.append("422")
        if method in ("POST", "PUT", "PATCH"):
            codes.append("415")
        extra = getattr(self.view, "extra_error_codes", {})
        # Viewsets list them per action; a plain view (no actions) as a list.
        codes += extra.get(getattr(self.view, "action", None), []) if isinstance(extra, dict) else extra
        if self.view.get_throttles():
            codes.append("429")
        codes.append("500")
        return codes

    def _error_response(self, code: str, path: str) -> dict:
        component = self.resolve_serializer(ErrorSerializer, "response")
        example = {
            **_EXAMPLES.get(code, {"error": "error", "detail": _DESCRIPTIONS.get(code, "")}),
            "status_code": int(code),
            "timestamp": "2026-11-25T10:00:00Z",
            "path": path.replace("{id}", "3f1c2a55-0000-4000-8000-000000000000"),
            "request_id": "6c1e0f7d2b9a4e51a7c3",
        }
        return {
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {"application/json": {"schema": component.ref, "examples": {"Error": {"value": example}}}},
        }


def strip_optional_trailing_slash(result, generator, request, public):
    """Our routes accept an optional trailing slash; document the canonical form without it."""
    result["paths"] = {
        (path.rstrip("/") if path != "/" else path): item for path, item in result.get("paths", {}).items()
    }
    return result
