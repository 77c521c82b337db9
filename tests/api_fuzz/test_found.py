"""What the schemathesis run (test_openapi_fuzz.py) found, each pinned as a plain API test."""

import pytest
from django.core.cache import cache

from core.api.parsers import has_nul
from core.api.throttles import AuthRateThrottle
from core.roles import Role
from runs.models import Run
from tests.conftest import make_user
from tests.runs.helpers import workflow_with_agents


@pytest.fixture
def document(anon):
    return anon.get("/openapi.json").json()


def test_a_nul_character_in_a_json_body_is_a_422_not_a_500(operator):
    # PostgreSQL's jsonb refuses "\u0000": the INSERT of the run failed and the API answered 500.
    workflow = workflow_with_agents("nul-a")
    for input_data in ({"text": "a\u0000b"}, {"ke\u0000y": "v"}, {"deep": [{"list": ["\u0000"]}]}):
        response = operator.post(f"/api/v1/workflows/{workflow.pk}/execute", {"input_data": input_data}, format="json")
        assert response.status_code == 422, response.content
        assert response.json()["error"] == "json_invalid" and "NUL" in response.json()["detail"]
    assert not Run.objects.exists()


def test_a_nul_in_a_workflow_definition_is_refused_too(editor):
    workflow_with_agents("nul-b")
    definition = {"name": "nul-flow", "description": "x\u0000", "start_step": "s1"}
    definition["steps"] = {"s1": {"id": "s1", "agent_name": "nul-b", "next_step": None}}
    response = editor.post("/api/v1/workflows", definition, format="json")
    assert response.status_code == 422 and "NUL" in response.json()["detail"]


def test_nul_search_is_a_loop_over_any_depth():
    deep = "\u0000"
    for _ in range(5000):
        deep = [deep]
    assert has_nul(deep) and has_nul({"a": {"b\u0000": 1}}) and not has_nul({"a": ["b", 1, None, {"c": 2.5}]})


def test_api_keys_made_outside_the_api_and_without_expiry_match_the_document(admin, document):
    # created_by and expires_at are null for such keys; the document said string.
    key = document["components"]["schemas"]["ApiKey"]["properties"]
    assert key["created_by"].get("nullable") is True and key["expires_at"].get("nullable") is True
    [listed] = [k for k in admin.get("/api/v1/api-keys").json()["items"] if k["name"] == "admin key"]
    assert listed["created_by"] is None and listed["expires_at"] is None


def test_run_ids_in_paths_are_uuids(document):
    # The logs list took its model's key type: the document said the run id of /runs/{id}/logs was an integer.
    for path, item in document["paths"].items():
        if path.startswith("/api/v1/runs/{id}"):
            for operation in item.values():
                [run_id] = [p for p in operation["parameters"] if p["in"] == "path" and p["name"] == "id"]
                assert run_id["schema"] == {"type": "string", "format": "uuid"}, path


@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/api/v1/auth/token/refresh"])
def test_token_endpoints_document_their_401_and_429(document, path):
    assert {"200", "401", "422", "429"} <= set(document["paths"][path]["post"]["responses"])


def test_a_wrong_password_is_the_documented_401(anon, db):
    # A fresh login budget for the test client's address (another test may have spent it).
    cache.delete(AuthRateThrottle.cache_format % {"scope": AuthRateThrottle.scope, "ident": "127.0.0.1"})
    make_user("someone", Role.VIEWER)
    response = anon.post("/api/v1/auth/token", {"username": "someone", "password": "wrong"}, format="json")
    assert response.status_code == 401 and response.json()["error"] == "authentication_failed"
