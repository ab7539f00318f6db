"""Every list is paged by an opaque cursor (stable while rows are added), `limit` at most
MAX_LIMIT rows a page."""

from rest_framework import pagination

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class CursorPagination(pagination.CursorPagination):
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    ordering = "pk"

    def get_ordering(self, request, queryset, view):
        """The view's `ordering` (a unique column, so the cursor is exact), else by id."""
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)


class ChangeLogPagination(CursorPagination):
    """The change log, newest first."""

    def get_ordering(self, request, queryset, view):
        return ("-pk",)
