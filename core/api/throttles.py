"""One budget of password attempts per client address (AUTH_THROTTLE_RATE), shared by every way in:
the JWT token endpoints, the admin's login page and the browsable API's. Shared, so that a guesser
gains nothing by moving from one to the other."""

from functools import wraps

from django.http import JsonResponse
from rest_framework.throttling import SimpleRateThrottle

from core.api.exceptions import error_body
from core.middleware import client_ip


class AuthRateThrottle(SimpleRateThrottle):
    """Counts every attempt, right or wrong, so that the right password is refused too once the budget
    is spent. The client is the address `client_ip` decides (NUM_PROXIES), never a header alone."""

    scope = "auth"

    def get_ident(self, request):
        return client_ip(request) or ""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def too_many_attempts(request, wait: float | None) -> JsonResponse:
    seconds = max(1, int(wait or 1))
    detail = f"Too many login attempts from this address. Try again in {seconds} seconds."
    response = JsonResponse(error_body(request, 429, detail), status=429)
    response["Retry-After"] = str(seconds)
    return response


def login_throttled(view):
    """A Django login view whose form posts spend the auth budget; showing the form does not."""

    @wraps(view)
    def throttled(request, *args, **kwargs):
        if request.method == "POST":
            throttle = AuthRateThrottle()
            if not throttle.allow_request(request, None):
                return too_many_attempts(request, throttle.wait())
        return view(request, *args, **kwargs)

    return throttled
