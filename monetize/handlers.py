"""Django-level error views: JSON under /api/ and /webhooks/, the usual pages elsewhere."""

from django.views import defaults

from kernel.api.errors import api_error_response, wants_json


def not_found(request, exception=None):
    if wants_json(request):
        return api_error_response(404, "not_found", "No such endpoint.")
    return defaults.page_not_found(request, exception)


def server_error(request):
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
