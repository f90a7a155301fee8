"""The check's process-local copies (kernel.localcache) under the server users run: Granian with
two worker processes, each holding its own copies. A change made by one worker (an override put
through the API) or by another process (a key revoked by a console action, here this test's
process) is seen by every worker on the very next check, on every connection."""

import http.client
import json

from django_tenants.utils import tenant_context

from tests.helpers import committed

CONNECTIONS = 8  # Granian's two workers each take some of them


def _connections(port):
    return [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(CONNECTIONS)]


def _call(conn, fixture, method, path, body=None):
    conn.request(
        method,
        path,
        body=json.dumps(body) if body is not None else None,
        headers={
            "Host": fixture.host,
            "Authorization": f"Bearer {fixture.api_key}",
            "Content-Type": "application/json",
        },
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def _check(conn, fixture):
    return _call(
        conn, fixture, "POST", "/api/v1/entitlements/check", {"customer": "c1", "feature": "private_projects"}
    )


def _redis_reads() -> int:
    """The check's Redis reads so far (its script or a tracked MGET), server-wide."""
    from kernel.redis import get_redis

    stats = get_redis().info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval", "mget"))


def test_changes_reach_every_worker_on_the_next_check(granian, live_tenant):
    port, _, _ = granian
    conns = _connections(port)
    for _ in range(5):  # every worker holds copies of the key and the snapshot now
        for conn in conns:
            status, body = _check(conn, live_tenant)
            assert status == 200, body
    before = body["limit"]
    reads = _redis_reads()
    for conn in conns:  # answered from the workers' copies: no Redis read at all
        assert _check(conn, live_tenant)[0] == 200
    assert _redis_reads() == reads

    status, body = _call(
        conns[0], live_tenant, "PUT", "/api/v1/customers/c1/overrides/private_projects", {"limit": before + 7}
    )
    assert status in (200, 201), body
    for conn in conns:  # at once, on whichever worker
        status, body = _check(conn, live_tenant)
        assert (status, body["limit"]) == (200, before + 7)

    from accounts.models import IntegratorApiKey
    from accounts.services import api_key_revoke

    def revoke():
        with tenant_context(live_tenant.tenant):
            for key in IntegratorApiKey.objects.filter(revoked_at__isnull=True):
                api_key_revoke(api_key=key)

    committed(revoke)  # another process revokes the key every worker holds a copy of
    for conn in conns:
        status, body = _check(conn, live_tenant)
        assert status == 401, body
    for conn in conns:
        conn.close()
