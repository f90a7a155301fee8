"""The OpenAPI schema describes what the API returns (issue 10 item 24): schemathesis generates
requests for every operation of /api/schema/ and sends them to the app as `make run` serves it
(scripts/web.sh: Granian), for a real tenant with its integrator key. Any 5xx, an undocumented status code, a body that does not match the
documented schema or a wrong content type fails the test. Bounded: a few hundred requests in all."""

import os
from collections import Counter

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

pytestmark = pytest.mark.timeout(300)

EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))

CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


FEATURES = ["private_projects", "concurrent_jobs", "build_minutes", "custom_runners", "api_requests"]


def _run_operation(
    operation, *, base_url: str, headers: dict, statuses: Counter, membership_id: int
) -> list[str]:
    failures: list[str] = []

    @given(case=operation.as_strategy(), real=st.booleans(), feature=st.sampled_from(FEATURES))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case, real, feature):
        # half the cases name the live tenant's customer `c1`, a catalog feature and c1's membership,
        # so the answers of existing objects are checked too, not only 404s
        if real:
            params = case.path_parameters or {}
            for name, value in (
                ("external_id", "c1"),
                ("feature", feature),
                ("membership_id", membership_id),
            ):
                if name in params:
                    params[name] = value
            if isinstance(case.body, dict):
                for name, value in (("customer", "c1"), ("feature", feature)):
                    if name in case.body:
                        case.body[name] = value
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseExceptionGroup as exc:  # schemathesis raises a FailureGroup of its failed checks
            failures.append(f"{case.operation.label}: {str(exc)[:1500]}\n  {case.as_curl_command(headers)}")

    run()
    return failures


def test_the_api_answers_as_its_openapi_schema_says(granian, live_tenant):
    base_url = f"http://127.0.0.1:{granian[0]}"
    headers = {"Host": live_tenant.host, "Authorization": f"Bearer {live_tenant.api_key}"}
    raw = httpx.get(f"{base_url}/api/schema/", headers={"Host": live_tenant.host}, timeout=30)
    assert raw.status_code == 200
    # c1 on a manual Team membership, so the membership operations have one to act on
    put_on_team = httpx.post(
        f"{base_url}/api/v1/customers",
        json={"external_id": "c1", "tier": "team"},
        headers=headers,
        timeout=30,
    )
    assert put_on_team.status_code == 200, put_on_team.text
    current = httpx.get(f"{base_url}/api/v1/customers/c1/membership", headers=headers, timeout=30).json()
    membership_id = current["membership"]["id"]
    schema = schemathesis.openapi.from_dict(yaml.safe_load(raw.content))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    failures: list[str] = []
    statuses: Counter = Counter()
    for operation in operations:
        failures += _run_operation(
            operation, base_url=base_url, headers=headers, statuses=statuses, membership_id=membership_id
        )
    print(
        f"{len(operations)} operations, {sum(statuses.values())} requests, statuses {sorted(statuses.items())}"
    )
    assert sum(statuses.values()) >= 4 * len(operations)
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
