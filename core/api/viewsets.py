from django.http import Http404
from rest_framework import exceptions, viewsets
from rest_framework.routers import SimpleRouter

from core.roles import Role


class BaseViewSet(viewsets.GenericViewSet):
    """What every resource viewset shares: roles, descriptive 404s, UUID lookups.

    Subclasses declare queryset, serializer, filterset, ordering and roles; writes go through
    the app's services.
    """

    read_role = Role.VIEWER
    write_role = Role.EDITOR
    action_roles: dict[str, Role] = {}

    def filter_queryset(self, queryset):
        # Filters and ordering are list features; a detail lookup by id needs neither.
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            name = self.get_queryset().model._meta.verbose_name.capitalize()
            value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
            raise exceptions.NotFound(f"{name} {value!r} not found.") from None


class Router(SimpleRouter):
    """Routes without a trailing slash that also answer with one, never redirecting."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
