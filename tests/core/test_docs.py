import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def test_openapi_is_3_0_and_needs_no_credentials(schema):
    assert schema["openapi"].startswith("3.0.")
    assert schema["info"]["title"] == "Workflow Management API"
    assert set(schema["components"]["securitySchemes"]) == {"ApiKeyAuth", "jwtAuth", "cookieAuth"}


def test_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_is_documented(schema):
    problems = []
    for method, path, op in operations(schema):
        name = f"{method.upper()} {path}"
        if not op.get("summary"):
            problems.append(f"{name}: no summary")
        success = [code for code in op["responses"] if code.startswith("2")]
        if not success:
            problems.append(f"{name}: no success response")
        for code in success:
            media = op["responses"][code].get("content", {})
            content = media.get("application/json") or media.get("text/event-stream")  # live events: SSE
            if code != "204" and not (content and content.get("examples")):
                problems.append(f"{name}: no example for {code}")
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and not body.get("examples"):
            problems.append(f"{name}: no request example")
        if path.startswith("/api/") and "auth/token" not in path and path != "/api/v1":  # the root is public
            if not op.get("security"):
                problems.append(f"{name}: no security requirement")
            for code in ("401", "403", "500"):
                if code not in op["responses"]:
                    problems.append(f"{name}: no {code} response")
            if "Requires role" not in op.get("description", ""):
                problems.append(f"{name}: role not documented")
        if "{id}" in path and "404" not in op["responses"]:
            problems.append(f"{name}: no 404 response")
        if method in ("post", "put", "patch") and "422" not in op["responses"]:
            problems.append(f"{name}: no 422 response")
        for code, response in op["responses"].items():
            if code[0] in "45":
                content = response["content"]["application/json"]
                if path != "/health/ready":  # its 503 is the error body plus the checks
                    assert content["schema"] == {"$ref": "#/components/schemas/Error"}, name
                if not content.get("examples"):
                    problems.append(f"{name}: no example for {code}")
    assert problems == []


def test_paths_have_no_trailing_slash(schema):
    assert all(not path.endswith("/") for path in schema["paths"])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_their_assets_locally(anon, page):
    response = anon.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/static/"), f"{asset} would need the internet"
        assert anon.get(asset).status_code == 200, asset
