"""The real URLs plus one view that crashes, to see how a 500 is answered."""

from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as real_urlpatterns


@api_view(["GET"])
@permission_classes([AllowAny])
def crash(request):
    raise RuntimeError("boom: a deliberate bug")


urlpatterns = [path("api/v1/crash", crash), *real_urlpatterns]
