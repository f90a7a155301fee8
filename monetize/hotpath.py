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
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections
from django.urls import Resolver404, get_resolver
from django.utils.log import log_response
from django_tenants.utils import get_public_schema_name

from kernel.requestlog import request_log_append, request_log_entry
from monetize.middleware import ApiHotPathMiddleware, run_applied
from tenants.middleware import tenant_cached

_PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z")


def _db_open() -> bool:
    return any(conn.connection is not None for conn in connections.all(initialized_only=True))


# The settings the fast lane reads on every request, read once: `settings.X` is a LazyObject
# attribute lookup (a Python-level __getattribute__), and _serve read six of them per call. They
# change at run time only in tests (override_settings, pytest-django's `settings`), which send
# setting_changed: HotPathWSGI reads them again then.
_SETTINGS = (
    "API_MAX_BODY_BYTES",
    "DATABASES",
    "PUBLIC_SCHEMA_NAME",
    "REQUEST_LOG_ENABLED",
    "ROOT_URLCONF",
    "USE_X_FORWARDED_HOST",
)


class HotPathWSGI:
    """WSGI wrapper: see the module's docstring."""

    def __init__(self, application):
        self.application = application
        self.applied = [cls(lambda request: None) for cls in ApiHotPathMiddleware.APPLIED]
        self._views: dict[str, object] = {}
        self._read_settings()
        setting_changed.connect(self._read_settings)  # weakly: a discarded wrapper is let go

    def _read_settings(self, *, setting: str | None = None, **kwargs) -> None:
        if setting is not None and setting not in _SETTINGS:
            return
        if getattr(self, "root_urlconf", None) != settings.ROOT_URLCONF:
            self._views = {}  # resolved against the URLconf that was
        self.root_urlconf = settings.ROOT_URLCONF
        self.use_x_forwarded_host = settings.USE_X_FORWARDED_HOST
        self.max_body_bytes = settings.API_MAX_BODY_BYTES
        self.request_log_enabled = settings.REQUEST_LOG_ENABLED
        self.public_schema = get_public_schema_name()
        # one database (the usual case): whether a connection is open is one attribute of the
        # default connection, instead of _db_open()'s walk over the thread's connections
        self.other_databases = set(settings.DATABASES) != {DEFAULT_DB_ALIAS}

    def _db_open(self, connection) -> bool:
        """_db_open(), given the thread's default connection."""
        return connection.connection is not None or (self.other_databases and _db_open())

    def _view(self, path: str):
        view = self._views.get(path)
        if view is None:
            try:
                view = get_resolver(self.root_urlconf).resolve(path).func
            except Resolver404:
                view = False
            self._views[path] = view
        return view

    def _tenant(self, environ):
        host = environ.get("HTTP_HOST", "")
        if not _PLAIN_HOST.match(host) or (self.use_x_forwarded_host and "HTTP_X_FORWARDED_HOST" in environ):
            return None
        tenant = tenant_cached(host.rsplit(":", 1)[0].lower() if ":" in host else host.lower())
        if (
            tenant is None
            or getattr(tenant, "suspended_at", None)
            or tenant.schema_name == self.public_schema  # the operator's host: no API
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
        tenant = self._tenant(environ) if 0 <= length <= self.max_body_bytes else None
        view = self._view(path) if tenant is not None else None
        if not view:
            return self.application(environ, start_response)
        return self._serve(environ, start_response, tenant, view)

    def _serve(self, environ, start_response, tenant, view):
        started, clock = time.time(), time.perf_counter()
        # the thread's connection object stays the same across close_old_connections (it closes
        # the wrapper's connection, it does not replace the wrapper)
        connection = connections[DEFAULT_DB_ALIAS]
        # as request_started: a connection past its age or broken is closed first
        if self._db_open(connection):
            close_old_connections()
        connection.set_tenant(tenant)
        request = WSGIRequest(environ)
        request.tenant = tenant
        request.urlconf = self.root_urlconf
        response = run_applied(self.applied, request, view)
        if self.request_log_enabled:
            elapsed = (time.perf_counter() - clock) * 1000
            request_log_append(
                schema=tenant.schema_name,
                entry=request_log_entry(request, response, started=started, elapsed_ms=elapsed),
            )
        if response.status_code >= 400:  # as Django's handler: the django.request logger's warning
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        if self._db_open(connection):  # as request_finished
            close_old_connections()
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())],
        )
        return [response.content]
