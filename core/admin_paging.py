"""List pages of big tables (runs, steps, events, the audit trail) without reading every row per page.

An unfiltered list's total is PostgreSQL's own estimate of the table's rows (pg_class.reltuples, kept by
ANALYZE and autovacuum) once the table is big: counting 100,000 rows costs more than the page itself, and
"about 100,000" is what the pager needs. A filtered list (status, search, dates) counts exactly. Filters
offer fixed choices (`choices_filter`) instead of Django's default of a DISTINCT over the whole column."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

ESTIMATE_ABOVE = 10_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self):
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor == "postgresql" and not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > ESTIMATE_ABOVE:
                return row[0]
        return super().count


class BigListAdminMixin:
    """For the lists of tables that grow without bound."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False  # "3 of 100,000": a second COUNT over the whole table
    list_per_page = 50


def choices_filter(field: str, values, title: str | None = None):
    """A list filter on `field` offering `values` (known in code), where Django's own would SELECT DISTINCT."""

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = f"{field}__exact"

        def lookups(self, request, model_admin):
            return [(value, value.replace("_", " ")) for value in values]

        def queryset(self, request, queryset):
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    ChoicesFilter.title = title or field.replace("_", " ")
    ChoicesFilter.__name__ = f"{field.title().replace('_', '')}Filter"
    return ChoicesFilter


def headers_once() -> None:
    """The theme (unfold 0.91) works out every column header again for each cell of a list (it labels
    cells for narrow screens): 50 rows x 10 columns is 5,000 headers, most of a runs page's time. The
    headers of one page do not change while it renders, so each list page now works them out once."""
    from unfold.templatetags import unfold_list

    original = unfold_list.result_headers
    if getattr(original, "once_per_page", False):
        return

    def result_headers(cl):
        if getattr(cl, "_headers", None) is None:
            cl._headers = list(original(cl))
        return iter(cl._headers)

    result_headers.once_per_page, result_headers.original = True, original
    unfold_list.result_headers = result_headers
