"""One error body for every error status, for DRF views and plain Django views alike.

Services raise domain errors (core/errors.py); this is where they become 409, 422 and 404.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, OperationalError
from django.http import Http404, JsonResponse
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from core import errors as domain
from core.middleware import current_request_id

logger = logging.getLogger("core.api")

BODY_FIELD = "body"  # the `field` of an error about the request body as a whole
JSON_HINT = "Send the body as JSON with Content-Type: application/json"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = domain.Conflict.default_message
    default_code = "conflict"


class UnprocessableEntity(exceptions.ValidationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service this request needs is unavailable. Try again later."
    default_code = "service_unavailable"


_ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "throttled",
    500: "internal_error",
    503: "service_unavailable",
}


def error_body(request, status_code: int, detail: str, *, error: str | None = None, errors=None) -> dict:
    body = {
        "error": error or _ERROR_CODES.get(status_code, "error"),
        "detail": detail,
        "status_code": status_code,
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "path": request.path if request is not None else None,
        "request_id": getattr(request, "request_id", None) or current_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def validation_error(exc: domain.InvalidInput) -> UnprocessableEntity:
    """A domain InvalidInput as DRF's ValidationError, field paths kept (also for use inside serializers)."""
    detail: dict[str, list] = {}
    for error in exc.errors:
        detail.setdefault(error.field or BODY_FIELD, []).append(exceptions.ErrorDetail(error.message, code=error.code))
    return UnprocessableEntity(detail)


def api_exception(exc: domain.DomainError) -> exceptions.APIException:
    if isinstance(exc, domain.InvalidInput):
        return validation_error(exc)
    if isinstance(exc, domain.NotFound):
        return exceptions.NotFound(exc.message)
    if isinstance(exc, domain.Conflict):
        return Conflict(exc.message)
    return exceptions.APIException(exc.message)


def flatten_errors(detail, prefix: str = "") -> list[dict]:
    """Turns DRF's nested error detail into [{field, message, type}] with dotted field paths."""
    if isinstance(detail, dict):
        result = []
        for key, value in detail.items():
            name = BODY_FIELD if key in ("non_field_errors", "__all__") else str(key)
            path = prefix if name == BODY_FIELD and prefix else f"{prefix}.{name}" if prefix else name
            result.extend(flatten_errors(value, path))
        return result
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [_one(item, prefix) for item in detail]
        result = []
        for index, item in enumerate(detail):
            if item:  # DRF puts {} for list items that were valid
                result.extend(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return result
    return [_one(detail, prefix)]


def _one(item, field: str) -> dict:
    return {"field": field or BODY_FIELD, "message": str(item), "type": getattr(item, "code", None) or "invalid"}


def _detail_text(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, dict):  # simplejwt puts {"detail": ..., "code": ..., "messages": [...]}
        detail = detail.get("detail", exc.default_detail)
    if isinstance(detail, list):
        detail = detail[0] if detail else exc.default_detail
    return str(detail)


def _media_type(request) -> str:
    given = (getattr(request, "content_type", "") or "").split(";")[0].strip()
    return repr(given) if given else "(no Content-Type)"


def exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, domain.DomainError):
        exc = api_exception(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError):
        logger.warning("Database unavailable: %s", exc)
        exc = ServiceUnavailable("The database is unavailable. Try again later.")

    if isinstance(exc, exceptions.UnsupportedMediaType):
        body = error_body(request, 415, f"Unsupported media type {_media_type(request)}. {JSON_HINT}.")
        return Response(body, status=415)

    if isinstance(exc, exceptions.ParseError):
        body = error_body(request, 422, f"Malformed request body: {exc.detail}", error="json_invalid")
        return Response(body, status=422)

    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = error_body(request, 422, "Request validation failed", errors=errors)
        return Response(body, status=422)

    # A 5xx's message is internal (a library's, or a domain error no status maps to): it goes to the
    # log below, the body gets the generic text. Our own 503s say only what is unavailable.
    api = isinstance(exc, exceptions.APIException)
    if api and (exc.status_code < 500 or isinstance(exc, ServiceUnavailable)):
        code = exc.status_code
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            error = "not_authenticated" if isinstance(exc, exceptions.NotAuthenticated) else "authentication_failed"
        else:
            error = _ERROR_CODES.get(code) or getattr(exc, "default_code", "error")
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response(error_body(request, code, _detail_text(exc), error=error), status=code, headers=headers)

    if isinstance(exc, DatabaseError):
        logger.exception("Database error")
    else:
        logger.exception("Unhandled error while serving %s", getattr(request, "path", "?"))
    detail = "An unexpected error occurred. Quote the request id when reporting it."
    return Response(error_body(request, 500, detail), status=500)


def json_not_found(request, exception=None):
    return JsonResponse(error_body(request, 404, f"No endpoint at {request.path}."), status=404)


def json_server_error(request):
    detail = "An unexpected error occurred. Quote the request id when reporting it."
    return JsonResponse(error_body(request, 500, detail), status=500)


def json_bad_request(request, exception=None):
    return JsonResponse(error_body(request, 400, "Bad request."), status=400)


def json_forbidden(request, exception=None):
    return JsonResponse(error_body(request, 403, "Forbidden."), status=403)
