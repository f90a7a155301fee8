"""One list shape for the whole API: `{"results": [...], "next": url | null, "previous": url | null}`,
cursor-paginated (`?cursor=`, `?limit=` up to 200). Lists that are always short (the tier catalog,
the unsynced usage report) answer in the same shape with both links null."""

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination as _CursorPagination
from rest_framework.response import Response


class CursorPagination(_CursorPagination):
    """Opaque `cursor` links, newest first; `limit` up to 200."""

    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 200


PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The `next` or `previous` link's cursor."),
    OpenApiParameter("limit", int, description="Items per page (default 50, at most 200)."),
]


def page_schema(name: str, item) -> serializers.Serializer:
    """The documented page of `item` (a serializer instance or class) for extend_schema(responses=...)."""
    child = item(many=True) if isinstance(item, type) else item
    return inline_serializer(
        name,
        {
            "results": child,
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
        },
    )


def paginated_response(*, request, view, queryset, serializer_class, ordering: str = "-id") -> Response:
    paginator = CursorPagination()
    paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def single_page(results: list) -> Response:
    """A short list that is never split, in the list shape."""
    return Response({"results": results, "next": None, "previous": None})
