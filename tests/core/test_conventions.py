"""The REST conventions of api.md, checked through the agents endpoint (every list shares them)."""

import logging
import uuid

import pytest

from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"
ERROR_KEYS = {"error", "detail", "status_code", "timestamp", "path", "request_id"}


def assert_error(response, status, error):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert ERROR_KEYS <= set(body)
    assert body["error"] == error
    assert body["status_code"] == status
    assert body["request_id"] == response["X-Request-ID"]
    return body


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1000}, "page_size"),
        ({"page_size": "x"}, "page_size"),
        ({"ordering": "password"}, "ordering"),
        ({"ordering": "name,-nope"}, "ordering"),
        ({"sort_by": "secret"}, "sort_by"),
        ({"sort_by": "name", "sort_order": "sideways"}, "sort_order"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter(viewer, params, field):
    body = assert_error(viewer.get(URL, params), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == [field]


def test_page_past_the_end_is_an_empty_page(viewer):
    AgentFactory.create_batch(3)
    body = viewer.get(URL, {"page": 5, "page_size": 2}).json()
    assert body == {"items": [], "total": 3, "page": 5, "page_size": 2, "total_pages": 2}


def test_empty_list(viewer):
    assert viewer.get(URL).json() == {"items": [], "total": 0, "page": 1, "page_size": 20, "total_pages": 0}


def test_malformed_json_is_422_json_invalid(editor):
    response = editor.post(URL, data='{"name": "x",', content_type="application/json")
    body = assert_error(response, 422, "json_invalid")
    assert "Malformed" in body["detail"]


def test_json_that_is_not_an_object_is_422(editor):
    body = assert_error(editor.post(URL, data="[1, 2]", content_type="application/json"), 422, "validation_error")
    assert body["errors"][0]["field"] == "body"


def test_non_uuid_id_is_404_with_a_message(viewer):
    body = assert_error(viewer.get(f"{URL}/not-a-uuid"), 404, "not_found")
    assert "not-a-uuid" in body["detail"]


def test_unknown_id_is_404_naming_the_resource(viewer):
    missing = uuid.uuid4()
    body = assert_error(viewer.get(f"{URL}/{missing}"), 404, "not_found")
    assert body["detail"] == f"Agent '{missing}' not found."


def test_unknown_path_is_a_json_404(viewer):
    body = assert_error(viewer.get("/api/v1/nothing-here"), 404, "not_found")
    assert body["path"] == "/api/v1/nothing-here"


def test_wrong_method_is_405_json(admin):
    assert_error(admin.patch(URL, {}, format="json"), 405, "method_not_allowed")


def test_trailing_slash_is_served_without_redirect(editor):
    AgentFactory()
    assert editor.get(URL + "/").status_code == 200
    response = editor.post(URL + "/", {"name": "slash", "url": "http://127.0.0.1:1/"}, format="json")
    assert response.status_code == 201
    assert editor.get(f"{URL}/{response.json()['id']}/").status_code == 200


def test_request_id_is_generated_or_echoed(viewer):
    generated = viewer.get(URL)["X-Request-ID"]
    assert len(generated) == 32
    assert viewer.get(URL, HTTP_X_REQUEST_ID="trace-abc-123")["X-Request-ID"] == "trace-abc-123"
    # a header that could forge log lines is replaced, not echoed
    assert viewer.get(URL, HTTP_X_REQUEST_ID="bad id\nINFO forged")["X-Request-ID"] != "bad id\nINFO forged"
    assert viewer.get("/health")["X-Request-ID"]
    assert viewer.get("/api/v1/nope")["X-Request-ID"]


def test_unsupported_media_type_is_415(editor):
    response = editor.post(URL, data="name=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_server_error_is_json_and_logged_with_the_request_id(anon, settings, caplog):
    settings.ROOT_URLCONF = "tests.core.urls_with_a_bug"
    with caplog.at_level(logging.ERROR, logger="core.api"):
        response = anon.get("/api/v1/crash", HTTP_X_REQUEST_ID="req-500-test")
    body = assert_error(response, 500, "internal_error")
    assert "boom" not in body["detail"]  # internals stay in the log
    record = next(r for r in caplog.records if r.name == "core.api")
    assert record.exc_info and "boom: a deliberate bug" in str(record.exc_info[1])
    assert record.request_id == "req-500-test"


@pytest.mark.parametrize("ordering", [None, "name", "-updated_at"])
def test_deep_pages_keep_the_order_without_gaps(viewer, ordering):
    AgentFactory.create_batch(230)
    params = {"page_size": 100, **({"ordering": ordering} if ordering else {})}
    pages = [viewer.get(URL, {**params, "page": page}).json()["items"] for page in (1, 2, 3)]
    assert [len(items) for items in pages] == [100, 100, 30]
    seen = [agent["id"] for items in pages for agent in items]
    whole = [
        agent["id"]
        for p in range(1, 25)
        for agent in viewer.get(URL, {**params, "page_size": 10, "page": p}).json()["items"]
    ]
    assert seen == whole[: len(seen)] and len(set(seen)) == 230


def test_a_body_over_the_limit_is_413_with_the_error_body():
    from django.test import Client

    body = b'{"input_data": {"text": "' + b"x" * (1_048_576 + 10) + b'"}}'
    response = Client().post("/api/v1/agents", data=body, content_type="application/json")
    assert response.status_code == 413
    payload = response.json()
    assert payload["error"] == "payload_too_large" and payload["status_code"] == 413
    assert "at most 1048576" in payload["detail"] and payload["request_id"]
