"""The real URLs plus views that crash, to see how a 500 is answered."""

from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as real_urlpatterns
from core.errors import DomainError

# What an internal error message may hold: a connection string with its password, a host name.
SECRET_TEXT = "could not connect to postgres://wf:hunter2@db.internal.example:5432/wf"


@api_view(["GET"])
@permission_classes([AllowAny])
def crash(request):
    raise RuntimeError("boom: a deliberate bug")


@api_view(["GET"])
@permission_classes([AllowAny])
def crash_with_api_exception(request):
    raise APIException(SECRET_TEXT)  # a library's 500 that carries a message


@api_view(["GET"])
@permission_classes([AllowAny])
def crash_with_domain_error(request):
    raise DomainError(SECRET_TEXT)  # no subclass the handler maps to 404 / 409 / 422


def crash_plain(request):
    raise RuntimeError(SECRET_TEXT)


urlpatterns = [
    path("api/v1/crash", crash),
    path("api/v1/crash-api-exception", crash_with_api_exception),
    path("api/v1/crash-domain-error", crash_with_domain_error),
    path("crash-plain", crash_plain),
    *real_urlpatterns,
]
