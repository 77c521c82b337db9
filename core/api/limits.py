"""A limit on request bodies: a body over API_MAX_BODY_BYTES is refused with 413 before anything
reads it (DRF's JSON parser reads the raw stream, which Django's own limits do not cover)."""

from django.conf import settings
from django.http import JsonResponse

from core.api.exceptions import error_body


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH") or ""
        limit = settings.API_MAX_BODY_BYTES
        if length.isdigit() and int(length) > limit:
            detail = f"The request body is {int(length)} bytes; at most {limit} are accepted."
            return JsonResponse(error_body(request, 413, detail), status=413)
        return self.get_response(request)
