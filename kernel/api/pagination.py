from rest_framework.pagination import CursorPagination as _CursorPagination


class CursorPagination(_CursorPagination):
    """Opaque `cursor` links, newest first; `limit` up to 200."""

    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 200
