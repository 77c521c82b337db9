import math

from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from core.api.exceptions import UnprocessableEntity
from core.api.totals import versioned_count


def _int_param(request, name: str, default: int, minimum: int, maximum: int | None, errors: dict) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = [f"Must be an integer, got {raw!r}."]
        return default
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        errors[name] = [f"Must be {bound}, got {value}."]
    return value


# From this offset on, a page is fetched by its keys first (see paginate_queryset).
DEFERRED_JOIN_OFFSET = 200


class PageNumberPagination(BasePagination):
    """`?page=&page_size=` with the body {items, total, page, page_size, total_pages}.

    Out-of-range values are a 422, not a silent clamp; a page past the end is an empty page.
    """

    page_size = 20
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        errors = {}
        page = _int_param(request, "page", 1, 1, None, errors)
        size = _int_param(request, "page_size", self.page_size, 1, self.max_page_size, errors)
        if errors:
            raise UnprocessableEntity(errors)
        self.page, self.page_size_used = page, size
        offset = (page - 1) * size
        if page == 1:
            # Most lists fit on one page: when the first page is not full its length is the total,
            # and the COUNT(*) query is skipped.
            rows = list(queryset[:size])
            self.total = len(rows) if len(rows) < size else self.count(queryset, request, view)
            return rows
        self.total = self.count(queryset, request, view)
        if offset >= self.total:
            return []
        if offset < DEFERRED_JOIN_OFFSET:
            return list(queryset[offset : offset + size])
        # Deep pages: find the page's keys first (an index-only scan that skips `offset` index
        # entries, not `offset` full rows), then fetch just those rows.
        keys = list(queryset.values_list("pk", flat=True)[offset : offset + size])
        by_pk = {row.pk: row for row in queryset.order_by().filter(pk__in=keys)}
        return [by_pk[key] for key in keys if key in by_pk]

    def count(self, queryset, request, view) -> int:
        """The exact `total`; a list with a faster exact source (runs: counters) overrides it, and a
        view over a versioned table (`versioned_total = True`, core/api/totals.py) reuses its counts."""
        if getattr(view, "versioned_total", False):
            return versioned_count(queryset)
        return queryset.count()

    def get_paginated_response(self, data):
        return Response(
            {
                "items": data,
                "total": self.total,
                "page": self.page,
                "page_size": self.page_size_used,
                "total_pages": math.ceil(self.total / self.page_size_used) if self.total else 0,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items", "total", "page", "page_size", "total_pages"],
            "properties": {
                "items": schema,
                "total": {"type": "integer", "example": 123},
                "page": {"type": "integer", "example": 1},
                "page_size": {"type": "integer", "example": 20},
                "total_pages": {"type": "integer", "example": 7},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "page",
                "required": False,
                "in": "query",
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1, "default": 1},
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "description": f"Items per page, 1 to {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size, "default": self.page_size},
            },
        ]
