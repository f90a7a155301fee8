"""A lean dispatch for the two hottest endpoints (entitlement check, key verification).

DRF's request wrapping, content negotiation, permission classes and rendering cost about as much
as the check itself, so these views authenticate with the same IntegratorKeyAuthentication, parse
the JSON body with the shared parser (kernel/api/jsonbody.py) and write the JSON response directly. Errors go through the same
exception handler, so the error shape and status codes are those of every other endpoint.
The DRF `post` method stays for the OpenAPI schema only.
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts.authentication import bearer_secret, principal_for_secret
from accounts.keys import key_hash, key_looks_valid
from accounts.permissions import InsufficientScope
from kernel.api.errors import exception_handler
from kernel.api.jsonbody import json_body_loads

_CHALLENGE = 'Bearer realm="api"'
_COPIED_HEADERS = ("WWW-Authenticate", "Retry-After")


class LeanJSONView(APIView):
    required_scope = "read"  # a check or a verification changes no data
    allow_nul = False  # the events endpoint rejects an event holding a NUL alone

    def prefetch(self, data, key_hash: str):
        """Optionally read, in one Redis round trip, the calling key's cache entry together with
        what `handle` needs; returns an object with `integrator_entry`, or None."""
        return None

    def handle(self, request, data, prefetched) -> tuple[dict, int, dict | None]:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs, self.request = args, kwargs, request
        try:
            if request.method != "POST":
                raise exceptions.MethodNotAllowed(request.method)
            raw = bearer_secret(request)
            if raw is None:
                raise exceptions.NotAuthenticated(
                    "An API key is required: `Authorization: Bearer mk_test_…`."
                )
            data, parse_error = None, None
            if request.content_type != "application/json":
                parse_error = exceptions.UnsupportedMediaType(request.content_type)
            else:
                try:
                    data = json_body_loads(request.body or b"null", allow_nul=self.allow_nul)
                except exceptions.ParseError as exc:
                    parse_error = exc
            prefetched = (
                self.prefetch(data, key_hash(raw)) if parse_error is None and key_looks_valid(raw) else None
            )
            # the key is judged before the body: a bad key is a 401 whatever the body says
            principal = principal_for_secret(raw, cached=prefetched.integrator_entry if prefetched else None)
            if not principal.has_scope(self.required_scope):
                raise InsufficientScope(f"This key lacks the '{self.required_scope}' scope.")
            request.auth = principal
            if parse_error is not None:
                raise parse_error
            body, status, headers = self.handle(request, data, prefetched)
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
