"""The fast lane: the entitlement check and key verification answered at the WSGI layer.

Both answer in about a tenth of a millisecond of their own work (one Redis round trip), so
Django's request cycle around them was most of their cost: the handler's request_started and
request_finished signals, the middleware chain (health, NUL, tenant routing, request log, body
limit, the hot-path middleware), the URLconf's thread-local state. `HotPathWSGI` sits between the
chunked-body wrapper and Django's handler and answers a request itself only when everything the
chain would do to it is known to be a no-op or is done here the same way:

- POST to one of HOT_PATHS, with no query string (a NUL there, or anything else, goes the long way);
- a plain `Host` header (name[:port]) naming a tenant already in the routing cache
  (tenants.middleware, filled by the chain after Django validated the host), not suspended, not
  the public schema, with no X-Forwarded-Host to weigh;
- a Content-Length within API_MAX_BODY_BYTES (over it: the chain's 413).

It then does what the chain does for such a request: sets the tenant on the connection, runs
SecurityMiddleware and CommonMiddleware (ApiHotPathMiddleware.APPLIED) around the same view the
tenant URLconf routes the path to, turns an exception into the same response
(response_for_exception), appends the call to the request log, and closes a database connection
the way request_finished would if one is open. Everything else goes to Django unchanged, which is
also how the first request for a host fills the cache. tests/api/test_fast_lane.py holds the two
ways to the same answers, case by case, and pins the signal receivers this skips.
"""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections, connections
from django.urls import Resolver404, get_resolver
from django.utils.log import log_response
from django_tenants.utils import get_public_schema_name

from kernel.requestlog import request_log_append, request_log_entry
from monetize.middleware import ApiHotPathMiddleware, run_applied
from tenants.middleware import tenant_cached

_PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z")


def _db_open() -> bool:
    return any(conn.connection is not None for conn in connections.all(initialized_only=True))


class HotPathWSGI:
    """WSGI wrapper: see the module's docstring."""

    def __init__(self, application):
        self.application = application
        self.applied = [cls(lambda request: None) for cls in ApiHotPathMiddleware.APPLIED]
        self._views: dict[str, object] = {}

    def _view(self, path: str):
        view = self._views.get(path)
        if view is None:
            try:
                view = get_resolver(settings.ROOT_URLCONF).resolve(path).func
            except Resolver404:
                view = False
            self._views[path] = view
        return view

    def _tenant(self, environ):
        host = environ.get("HTTP_HOST", "")
        if not _PLAIN_HOST.match(host) or (
            settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ
        ):
            return None
        tenant = tenant_cached(host.rsplit(":", 1)[0].lower() if ":" in host else host.lower())
        if (
            tenant is None
            or getattr(tenant, "suspended_at", None)
            or tenant.schema_name == get_public_schema_name()  # the operator's host: no API
        ):
            return None
        return tenant

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if (
            path not in ApiHotPathMiddleware.HOT_PATHS
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
        ):
            return self.application(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return self.application(environ, start_response)
        tenant = self._tenant(environ) if 0 <= length <= settings.API_MAX_BODY_BYTES else None
        view = self._view(path) if tenant is not None else None
        if not view:
            return self.application(environ, start_response)
        return self._serve(environ, start_response, tenant, view)

    def _serve(self, environ, start_response, tenant, view):
        started, clock = time.time(), time.perf_counter()
        if _db_open():  # as request_started: a connection past its age or broken is closed first
            close_old_connections()
        connection = connections["default"]
        connection.set_tenant(tenant)
        request = WSGIRequest(environ)
        request.tenant = tenant
        request.urlconf = settings.ROOT_URLCONF
        response = run_applied(self.applied, request, view)
        if settings.REQUEST_LOG_ENABLED:
            elapsed = (time.perf_counter() - clock) * 1000
            request_log_append(
                schema=tenant.schema_name,
                entry=request_log_entry(request, response, started=started, elapsed_ms=elapsed),
            )
        if response.status_code >= 400:  # as Django's handler: the django.request logger's warning
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        if _db_open():  # as request_finished
            close_old_connections()
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())],
        )
        return [response.content]
