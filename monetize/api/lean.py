"""A lean dispatch for the two hottest endpoints (entitlement check, key verification).

DRF's request wrapping, content negotiation, permission classes and rendering cost about as much
as the check itself, so these views authenticate with the same IntegratorKeyAuthentication, parse
the JSON body themselves and write the JSON response directly. Errors go through the same
exception handler, so the error shape and status codes are those of every other endpoint.
The DRF `post` method stays for the OpenAPI schema only.
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts.authentication import IntegratorKeyAuthentication
from accounts.permissions import InsufficientScope
from monetize.api.errors import exception_handler

_AUTH = IntegratorKeyAuthentication()
_CHALLENGE = 'Bearer realm="api"'
_COPIED_HEADERS = ("WWW-Authenticate", "Retry-After")


class LeanJSONView(APIView):
    required_scope = "read"  # a check or a verification changes no data

    def handle(self, request, data) -> tuple[dict, int, dict | None]:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs, self.request = args, kwargs, request
        try:
            if request.method != "POST":
                raise exceptions.MethodNotAllowed(request.method)
            result = _AUTH.authenticate(request)
            if result is None:
                raise exceptions.NotAuthenticated(
                    "An API key is required: `Authorization: Bearer mk_test_…`."
                )
            principal = result[0]
            if not principal.has_scope(self.required_scope):
                raise InsufficientScope(f"This key lacks the '{self.required_scope}' scope.")
            request.auth = principal
            if request.content_type != "application/json":
                raise exceptions.UnsupportedMediaType(request.content_type)
            try:
                data = json.loads(request.body or b"null")
            except ValueError as exc:
                raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
            body, status, headers = self.handle(request, data)
        except Exception as exc:
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                exc.auth_header = _CHALLENGE
            error = exception_handler(exc, {"view": self, "request": request})
            body, status = error.data, error.status_code
            headers = {name: error[name] for name in _COPIED_HEADERS if error.has_header(name)}
        response = HttpResponse(
            json.dumps(body, cls=DjangoJSONEncoder), content_type="application/json", status=status
        )
        for name, value in (headers or {}).items():
            response[name] = value
        return response
