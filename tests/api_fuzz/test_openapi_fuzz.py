"""Schemathesis against our own /openapi.json, once per kind of caller (issue 18, Build 3).

Every operation of the document is called in-process (WSGI) with generated requests, valid and invalid,
plus the document's own examples, by each role: an API key per role (X-API-Key), a JWT (Bearer) of a
user holding a role, and no credentials at all. No response may be a 5xx, and each must match the
document: a documented status code, the documented content type, a body valid against that status
code's schema, the documented headers.

The data is seeded (tests/api_fuzz/seed.py) and path parameters are real ids most of the time, so the
cases reach agents, workflows, runs with steps, webhooks and schedules, not only 404s. Deterministic:
Hypothesis is derandomized, so a failure shows again on the next run.
"""

import re
import time

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from core.api.throttles import AuthRateThrottle
from core.roles import RANK, Role
from core.services import api_key_create
from tests.api_fuzz.seed import seed
from tests.conftest import make_user

# The live event streams (text/event-stream) answer until the client goes away: under the in-process
# WSGI client a request would never end. tests/runs/test_live_events.py and test_events.py cover them.
STREAMS = ["/api/v1/events", "/api/v1/runs/{id}/events"]
KINDS = ["viewer", "operator", "editor", "admin", "jwt-editor", "anonymous"]
# Cases per operation. The full budget goes to the role an operation needs (or, for the public ones,
# to the anonymous caller); a higher role runs the same code and gets a few; a lower role only has to
# be refused as documented (401/403), which one case shows. About 70 s in all on this 2-core machine.
FULL, HIGHER, REFUSED = 10, 2, 1
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
CARD = {
    "name": "Fuzz agent",
    "description": "Answers the health check of the fuzz run.",
    "version": "1.0.0",
    "url": "http://127.0.0.1/",
    "capabilities": {},
    "skills": [{"id": "echo", "name": "Echo", "description": "Echoes", "tags": []}],
    "defaultInputModes": ["text"],
    "defaultOutputModes": ["text"],
}
NEEDS = re.compile(r"Requires role \*\*(\w+)\*\* or higher")


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def credentials(db, kind) -> dict[str, str]:
    if kind == "anonymous":
        return {}
    role = Role(kind.removeprefix("jwt-"))
    user = make_user(f"fuzz-{kind}", role)
    if kind.startswith("jwt-"):
        return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}
    _, raw = api_key_create(user=user, role=role, name=f"fuzz {kind} key")
    return {"X-API-Key": raw}


@pytest.fixture
def wsgi_app():
    """The WSGI application, without closing the database connection at the end of each request (as
    Django's test client does too): the connection holds the test's transaction and its seed data."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, settings, httpserver, wsgi_app):
    # Agents point at this server, so the health check answers at once and never leaves the machine.
    settings.AGENT_HEALTH_TIMEOUT_SECONDS = 2
    httpserver.expect_request("/.well-known/agent-card.json").respond_with_json(CARD)
    ids = seed(httpserver.url_for("/"))
    # A fresh budget of login attempts for the in-process client's address (127.0.0.1); a spent one is a
    # documented 429, but the token endpoints' 200 would not be reached.
    cache.delete(AuthRateThrottle.cache_format % {"scope": AuthRateThrottle.scope, "ident": "127.0.0.1"})
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_wsgi("/openapi.json", wsgi_app, config=config)

    @schema.hook("flatmap_path_parameters")
    def real_ids(context, path_parameters):
        operation = context.operation
        known = ids.get(f"{operation.method.upper()} {operation.path}") or ids.get(operation.path)
        if not known or not path_parameters:
            return st.just(path_parameters)
        # Mostly a seeded object; sometimes the generated value (unknown ids, malformed ones).
        return st.sampled_from([{**path_parameters, **known}] * 3 + [path_parameters])

    @schema.hook("flatmap_body")
    def real_values(context, body):
        if not isinstance(body, dict):
            return st.just(body)
        if context.operation.path in ids:  # the token endpoints: right credentials half the time
            return st.sampled_from([ids[context.operation.path], body])
        if "workflow_id" in body:
            return st.sampled_from([{**body, **ids["workflow_id"]}, body])
        return st.just(body)

    return schema.exclude(path=STREAMS)


def budget(definition: dict, kind: str) -> int:
    found = NEEDS.search(definition.get("description", ""))
    if found is None:  # public: the root, health, the token endpoints
        return FULL if kind == "anonymous" else REFUSED
    if kind == "anonymous":
        return REFUSED
    have, need = RANK[Role(kind.removeprefix("jwt-"))], RANK[Role(found.group(1))]
    if have < need:
        return REFUSED
    return FULL if have == need and not kind.startswith("jwt-") else HIGHER


def operation_failure(operation, credentials: dict, examples: int, statuses: set) -> str | None:
    """Runs the operation's cases: the document's examples, then valid and invalid generated ones.
    Returns the first failure (shrunk), or None."""
    strategy = st.one_of(
        *operation.get_strategies_from_examples(),
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    last = []

    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def check(case):
        last[:] = [case]
        response = case.call(headers=credentials)
        statuses.add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=credentials)

    try:
        check()
    except (Exception, FailureGroup) as error:  # the checks' failures, or an error of the call itself
        return f"{operation.label}: {error}\n{last[0].as_curl_command(headers=credentials)}"
    return None


# In-process calls; the test database is one transaction that never commits, so the outbox sends
# nothing (no Kafka, no Celery, no webhook delivery) and every kind starts from the same seed.
def test_every_operation_answers_as_documented(api_schema, kind, credentials):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40, "the document lost its operations"
    failures, statuses, full, started = [], {}, set(), time.monotonic()
    for operation in operations:
        definition = api_schema.raw_schema["paths"][operation.path][operation.method.lower()]
        examples = budget(definition, kind)
        if examples == FULL:
            full.add(operation.label)
        statuses[operation.label] = set()
        failure = operation_failure(operation, credentials, examples, statuses[operation.label])
        if failure:
            failures.append(failure)
    print(f"{kind}: {time.monotonic() - started:.1f} s")
    for label, codes in statuses.items():
        print(f"  {label}: {sorted(codes)}")
    assert not failures, f"as {kind}:\n" + "\n\n".join(failures)
    # The seed works: most operations fuzzed in full reach real objects (a 2xx), not only 404 and 422.
    missed = {label for label in full if not any(200 <= code < 300 for code in statuses[label])}
    print(f"  fuzzed in full: {len(full)}; no 2xx: {sorted(missed)}")
    assert len(missed) <= max(2, len(full) // 4), sorted(missed)
