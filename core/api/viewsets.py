import functools
import uuid

from django.http import Http404
from django.urls import reverse
from rest_framework import exceptions, mixins, viewsets
from rest_framework.routers import SimpleRouter

from core.db import placeholders, the_row
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

    def live_object(self, model, statuses):
        """The row of the URL's id whose status is one of `statuses`, or a 404 naming it, by SQL built
        once (core.db.the_row): DRF's lookup compiled its query again for every request, a fifth of a
        detail's CPU. A malformed id is a 404 too, as with DRF's lookup."""
        value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        try:
            pk = uuid.UUID(str(value))
        except ValueError:
            pk = None
        found = the_row(model, _live_row(len(statuses)), [pk, *statuses]) if pk else None
        if found is None:
            raise exceptions.NotFound(f"{model._meta.verbose_name.capitalize()} {value!r} not found.")
        self.check_object_permissions(self.request, found)
        return found

    def location(self, pk, basename: str | None = None) -> dict:
        """The `Location` header of a 201/202 that made a resource: its own detail path.

        DRF's default takes the body's `url` field, which for an agent is the agent's address."""
        return {"Location": reverse(f"{basename or self.basename}-detail", kwargs={"pk": pk})}


@functools.cache
def _live_row(statuses: int) -> str:
    return f'"id" = %s AND "status" IN ({placeholders(range(statuses))})'


class SoftDeleteViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    BaseViewSet,
):
    """CRUD for resources that are deleted softly (agents, workflows): a deleted row is a 404 for
    every detail route, and the list shows deleted rows only when its status filter asks for them
    (SoftDeleteFilterSet). The model's manager has `live()`. Subclasses declare the rest and route
    create, update and destroy through their services."""

    ordering_fields = ["name", "created_at", "updated_at", "status"]
    ordering = ["-created_at"]
    extra_error_codes = {"create": ["409"], "update": ["409"], "partial_update": ["409"]}
    live_statuses: list = []  # subclasses: the statuses of the rows that are not deleted (the model's live())

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset if self.action == "list" else queryset.live()

    def get_object(self):
        """On a GET, the live row by SQL built once (`live_object`); writes look up as DRF does."""
        if self.request.method != "GET" or not self.live_statuses:
            return super().get_object()
        return self.live_object(self.queryset.model, self.live_statuses)

    def get_success_headers(self, data):
        # Here, not on BaseViewSet: CreateModelMixin's (DRF's `url` field) comes first in the MRO.
        return self.location(data["id"]) if isinstance(data, dict) and data.get("id") else {}

    def update(self, request, *args, **kwargs):
        # PUT may leave fields out and they keep their values, as in the older API whose clients
        # (its web UI) send only what they edit: PUT and PATCH differ only in the verb.
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)


class Router(SimpleRouter):
    """Routes without a trailing slash that also answer with one, never redirecting."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
