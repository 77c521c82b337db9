"""The request context: id, client address and API key of the request being served.

Kept in a context variable so that logging and the audit trail can read it without every function
passing the request along. Outside a request (commands, workers) it is empty.
"""

import contextvars
import ipaddress
import logging
import re
import uuid
from dataclasses import dataclass

from django.conf import settings


@dataclass
class RequestContext:
    request_id: str = "-"
    ip: str | None = None
    api_key_prefix: str | None = None


_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("request_context", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def current_context() -> RequestContext:
    return _context.get() or RequestContext()


def current_request_id() -> str:
    return current_context().request_id


def note_api_key(prefix: str) -> None:
    """Records which API key authenticated the current request (for the audit trail)."""
    context = _context.get()
    if context is not None:
        context.api_key_prefix = prefix


def client_ip(request) -> str | None:
    """The client's address for the audit trail and the login throttles: the socket's, or behind
    NUM_PROXIES proxies the one the outermost of them saw. Each proxy appends to X-Forwarded-For, so only
    that many entries from the right are trustworthy: what lies left of them is whatever the client
    sent (taking it would let anyone pose as a new client with each request)."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.NUM_PROXIES
    entries = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if proxies and entries:
        candidate = entries[-min(proxies, len(entries))]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:  # not an address: a proxy that does not append, or a forged header
            return remote
    return remote


class RequestIdMiddleware:
    """Gives every request an id (the client's X-Request-ID when it is sane) and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _context.set(RequestContext(request_id=request_id, ip=client_ip(request)))
        try:
            response = self.get_response(request)
        finally:
            _context.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record):
        record.request_id = getattr(record, "request_id", None) or current_request_id()
        return True
