"""One error shape for the whole API: `{"error": {"code", "message", "details"}}`.

DRF's own exceptions, Django's Http404/PermissionDenied, our ApplicationError and anything
unexpected (rendered as a 500 with no traceback; the traceback goes to the log) all end here.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from kernel.errors import ApplicationError

logger = logging.getLogger("monetize.api")

# PostgreSQL unreachable (refused, reset, restarting) or a transient failure it reports as
# operational (a lock or statement timeout, a serialization failure): the client may retry
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable for a moment; retry shortly."

_CODES = {
    exceptions.ParseError: ("malformed_request", None),
    exceptions.AuthenticationFailed: ("unauthenticated", None),
    exceptions.NotAuthenticated: ("unauthenticated", None),
    exceptions.PermissionDenied: ("forbidden", None),
    exceptions.NotFound: ("not_found", None),
    exceptions.MethodNotAllowed: ("method_not_allowed", None),
    exceptions.NotAcceptable: ("not_acceptable", None),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", None),
    exceptions.Throttled: ("rate_limited", None),
    exceptions.ValidationError: ("invalid_request", "The request is invalid."),
}


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _message_of(detail) -> str:
    if isinstance(detail, list) and detail:
        return _message_of(detail[0])
    if isinstance(detail, dict) and detail:
        return _message_of(next(iter(detail.values())))
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable: %r", exc)
        return Response(
            error_body("database_unavailable", DATABASE_UNAVAILABLE_MESSAGE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", "The request body is too large."), status=413)

    if not isinstance(exc, exceptions.APIException):
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body("internal_error", "Something went wrong on our side; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    code, message = next(
        ((c, m) for klass, (c, m) in _CODES.items() if isinstance(exc, klass)), ("error", None)
    )
    detail = exc.detail
    custom_code = getattr(exc, "error_code", None)
    details: dict = {}
    if isinstance(exc, exceptions.ValidationError):
        details = {"fields": detail} if isinstance(detail, dict) else {"errors": detail}
    elif isinstance(exc, exceptions.ParseError):
        code = "malformed_json"
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(
        error_body(custom_code or code, message or _message_of(detail), details),
        status=exc.status_code,
        headers=headers,
    )


def wants_json(request) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/webhooks/")


def api_error_response(
    status_code: int, code: str, message: str, headers: dict | None = None
) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code, headers=headers)
