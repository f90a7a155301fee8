"""Process-level middleware that must run before tenant routing."""

import io
import json
import time

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import connection
from django.http import HttpResponseBadRequest, JsonResponse

from kernel.api.errors import api_error_response, error_body, wants_json
from kernel.requestlog import request_log_append, request_log_entry


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # a readiness probe reports failures, it never raises
        return {"ok": False, "error": exc.__class__.__name__, "ms": _ms(started)}
    return {"ok": True, "ms": _ms(started)}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _check_database() -> None:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _check_broker() -> None:
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1) as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


def readiness() -> dict:
    checks = {
        "database": _timed(_check_database),
        "redis": _timed(_check_redis),
        "broker": _timed(_check_broker),
    }
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "unavailable", "checks": checks}


class HealthCheckMiddleware:
    """`/healthz` (the process answers) and `/readyz` (database, Redis and broker reachable).

    Served for any host, before tenant routing, so a load balancer can probe by IP.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            body = readiness()
            return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
        return self.get_response(request)


class NulRejectMiddleware:
    """A NUL in the path or the query string is a 400 before anything reads it: PostgreSQL cannot
    hold NUL in text, so a lookup such as /api/v1/customers/ali%00ce raised deep in the driver (a
    500). JSON bodies get the same check in kernel/api/jsonbody.py."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            message = "The request may not contain the NUL character (%00)."
            if wants_json(request):
                return api_error_response(400, "nul_character", message)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)


class ApiBodyLimitMiddleware:
    """Refuse an API or webhook body over API_MAX_BODY_BYTES with a JSON 413, before reading it."""

    PREFIXES = ("/api/", "/webhooks/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(self.PREFIXES):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                return JsonResponse(
                    {
                        "error": {
                            "code": "payload_too_large",
                            "message": f"The request body exceeds {settings.API_MAX_BODY_BYTES} bytes.",
                            "details": {"limit": settings.API_MAX_BODY_BYTES, "received": length},
                        }
                    },
                    status=413,
                )
        return self.get_response(request)


class ChunkedBodyWSGI:
    """WSGI wrapper: a body sent with `Transfer-Encoding: chunked` (no Content-Length) is read here.

    gunicorn de-chunks it into wsgi.input, but Django sizes the body by CONTENT_LENGTH alone and,
    finding none, read it as empty (a misleading 400 "send a JSON body"). The body is read up to
    API_MAX_BODY_BYTES (past it: the same JSON 413 as ApiBodyLimitMiddleware) and handed on with
    its length.
    """

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if (
            not environ.get("CONTENT_LENGTH")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            limit = settings.API_MAX_BODY_BYTES
            body = environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                payload = json.dumps(
                    error_body(
                        "payload_too_large",
                        f"The request body exceeds {limit} bytes.",
                        {"limit": limit},
                    )
                ).encode()
                start_response(
                    "413 Content Too Large",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(payload))),
                        ("Connection", "close"),
                    ],
                )
                return [payload]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)


# --- page-only middleware ------------------------------------------------------------------------
# Sessions, CSRF, messages, static files and clickjacking headers serve the server-rendered pages;
# the integrator API (key-authenticated JSON) needs none of them. These subclasses pass API requests
# straight through, which takes ~0.1 ms off every API call (bench/entitlements.py).

from django.contrib.auth.middleware import AuthenticationMiddleware  # noqa: E402
from django.contrib.messages.middleware import MessageMiddleware  # noqa: E402
from django.contrib.sessions.middleware import SessionMiddleware  # noqa: E402
from django.middleware.clickjacking import XFrameOptionsMiddleware  # noqa: E402
from whitenoise.middleware import WhiteNoiseMiddleware  # noqa: E402

API_PREFIXES = ("/api/v1/", "/webhooks/")


class _PagesOnly:
    def __call__(self, request):
        if request.path_info.startswith(API_PREFIXES):
            return self.get_response(request)
        return super().__call__(request)


class PagesWhiteNoiseMiddleware(_PagesOnly, WhiteNoiseMiddleware):
    pass


class PagesSessionMiddleware(_PagesOnly, SessionMiddleware):
    pass


class PagesAuthenticationMiddleware(_PagesOnly, AuthenticationMiddleware):
    pass


class PagesMessageMiddleware(_PagesOnly, MessageMiddleware):
    pass


class PagesXFrameOptionsMiddleware(_PagesOnly, XFrameOptionsMiddleware):
    pass


class ApiRequestLogMiddleware:
    """Record each integrator API call (`/api/v1/…`) in the tenant's bounded request log
    (kernel/requestlog.py): a buffered append, no I/O on the request's path."""

    PREFIX = "/api/v1/"

    def __init__(self, get_response):
        if not settings.REQUEST_LOG_ENABLED:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(self.PREFIX):
            return self.get_response(request)
        started, clock = time.time(), time.perf_counter()
        response = self.get_response(request)
        tenant = getattr(request, "tenant", None)
        schema = getattr(tenant, "schema_name", "public")
        if schema != "public":
            elapsed = (time.perf_counter() - clock) * 1000
            request_log_append(
                schema=schema,
                entry=request_log_entry(request, response, started=started, elapsed_ms=elapsed),
            )
        return response


# --- the integrator API's hot paths --------------------------------------------------------------

from django.core.handlers.exception import response_for_exception  # noqa: E402
from django.middleware.common import CommonMiddleware  # noqa: E402
from django.middleware.security import SecurityMiddleware  # noqa: E402
from django.urls import Resolver404, get_resolver, set_urlconf  # noqa: E402


def run_applied(applied: list, request, view):
    """`view` wrapped in the middleware instances `applied` (outermost first), as Django's chain would
    run them: a response from one's process_request skips the rest and the view, an exception
    becomes Django's answer to it, and every middleware that ran sees the response on the way out.
    Shared by ApiHotPathMiddleware and the WSGI fast lane (monetize/hotpath.py)."""
    response, ran = None, 0
    try:
        for middleware in applied:  # as MiddlewareMixin: a response from one skips the rest
            ran += 1
            response = middleware.process_request(request)
            if response is not None:
                break
        if response is None:
            response = view(request)
    except Exception as exc:  # as Django's chain: the answer to it still passes the outer layers
        response = response_for_exception(request, exc)
    for middleware in reversed(applied[:ran]):
        response = middleware.process_response(request, response)
    return response


class ApiHotPathMiddleware:
    """The entitlement check and key verification go straight to their view.

    Both answer in about a millisecond, so the request's plumbing is most of their cost: resolving
    their path walked the tenant URLconf (~100 patterns before `/api/v1/entitlements/check`, a
    third of the check's Python time), and the middleware below this one serves pages (sessions,
    CSRF, authentication, messages, static files, allauth) and passes API requests through. So for
    HOT_PATHS this middleware runs the view itself, with the route it resolved once per URLconf,
    wrapped in the two middleware below it that do apply to the API (SecurityMiddleware's headers
    and redirect, CommonMiddleware's checks), in their order. Everything above it (health, NUL,
    tenant routing and suspension, request log, body limit) runs as for every request, and so does
    the view's own authentication and error handling. tests/api/test_hot_path.py pins the
    middleware list below this one: a new middleware there must be applied here or shown to
    pass the API through.
    """

    HOT_PATHS = frozenset({"/api/v1/entitlements/check", "/api/v1/keys/verify"})
    APPLIED = (SecurityMiddleware, CommonMiddleware)

    def __init__(self, get_response):
        self.get_response = get_response
        self.applied = [cls(get_response) for cls in self.APPLIED]
        self._routes: dict[tuple[str, str], object] = {}  # (urlconf, path) -> ResolverMatch | None

    def _route(self, request, path: str):
        urlconf = getattr(request, "urlconf", None) or settings.ROOT_URLCONF
        try:
            return self._routes[urlconf, path]
        except KeyError:
            pass
        try:
            match = get_resolver(urlconf).resolve(path)
        except Resolver404:  # e.g. the operator's bare host: no API there
            match = None
        self._routes[urlconf, path] = match
        return match

    def __call__(self, request):
        path = request.path_info
        if path not in self.HOT_PATHS:
            return self.get_response(request)
        match = self._route(request, path)
        if match is None:
            return self.get_response(request)

        def view(request):
            set_urlconf(getattr(request, "urlconf", None) or settings.ROOT_URLCONF)
            request.resolver_match = match
            return match.func(request, *match.args, **match.kwargs)

        return run_applied(self.applied, request, view)
