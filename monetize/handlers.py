"""Django-level error views: JSON under /api/ and /webhooks/, the usual pages elsewhere."""

import sys

from django.template.response import SimpleTemplateResponse
from django.views import defaults

from kernel.api.errors import (
    DATABASE_ERRORS,
    DATABASE_RETRY_AFTER_SECONDS,
    DATABASE_UNAVAILABLE_MESSAGE,
    api_error_response,
    wants_json,
)


def not_found(request, exception=None):
    if wants_json(request):
        return api_error_response(404, "not_found", "No such endpoint.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    # Django calls handler500 inside its `except`: the exception at hand tells an outage from a bug.
    # PostgreSQL down surfaces here from middleware (tenant routing queries first) and page views.
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable(request)
    if wants_json(request):
        return api_error_response(
            500, "internal_error", "Something went wrong on our side; it has been logged."
        )
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if wants_json(request):
        return api_error_response(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if wants_json(request):
        return api_error_response(403, "forbidden", "You may not do this.")
    return defaults.permission_denied(request, exception)


def database_unavailable(request):
    """503 with Retry-After: JSON under /api/ and /webhooks/ (providers retry), a plain page elsewhere
    (rendered without the base layout, which would query the database for the user and tenant)."""
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    if wants_json(request):
        return api_error_response(503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE, headers=headers)
    response = SimpleTemplateResponse("503.html", {"retry_after": DATABASE_RETRY_AFTER_SECONDS}, status=503)
    response.render()
    for name, value in headers.items():
        response[name] = value
    return response
