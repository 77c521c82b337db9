from rest_framework import filters

from core.api.exceptions import UnprocessableEntity


class OrderingFilter(filters.OrderingFilter):
    """`?ordering=name,-created_at`, or the older `?sort_by=name&sort_order=desc`.

    Unknown fields are a 422 (DRF ignores them silently). The primary key is always the last
    sort key, so that pages never overlap or skip rows when values tie.
    """

    def get_ordering(self, request, queryset, view):
        allowed = list(getattr(view, "ordering_fields", []))
        fields = self._requested(request)
        if not fields:
            return list(self.get_default_ordering(view) or [])
        unknown = [field for field in fields if field.lstrip("-") not in allowed]
        if unknown:
            param = "ordering" if request.query_params.get(self.ordering_param) else "sort_by"
            raise UnprocessableEntity(
                {param: [f"Unknown sort field {unknown[0].lstrip('-')!r}. Allowed: {', '.join(allowed)}."]}
            )
        return fields

    def _requested(self, request) -> list[str]:
        ordering = request.query_params.get(self.ordering_param)
        if ordering:
            return [part.strip() for part in ordering.split(",") if part.strip()]
        sort_by = request.query_params.get("sort_by")
        if not sort_by:
            return []
        sort_order = request.query_params.get("sort_order", "asc").lower()
        if sort_order not in ("asc", "desc"):
            raise UnprocessableEntity({"sort_order": [f"Must be 'asc' or 'desc', got {sort_order!r}."]})
        return [("-" if sort_order == "desc" else "") + sort_by.strip()]

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        last = ordering[-1]
        tiebreak = "-pk" if last.startswith("-") else "pk"
        if last.lstrip("-") not in ("pk", "id"):
            ordering = [*ordering, tiebreak]
        return queryset.order_by(*ordering)

    def get_schema_operation_parameters(self, view):
        allowed = ", ".join(getattr(view, "ordering_fields", []))
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort keys, comma separated; prefix with '-' for descending. One of: {allowed}.",
                "schema": {"type": "string"},
            },
            {
                "name": "sort_by",
                "required": False,
                "in": "query",
                "description": f"Older form of `ordering`: one field ({allowed}).",
                "schema": {"type": "string"},
            },
            {
                "name": "sort_order",
                "required": False,
                "in": "query",
                "description": "With `sort_by`: asc (default) or desc.",
                "schema": {"type": "string", "enum": ["asc", "desc"]},
            },
        ]
