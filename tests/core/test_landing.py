"""`/` is a landing page and `/api/v1/` the API root, instead of 404s; the admin's "View site" goes to `/`."""

import re

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from core.about import platform_version
from tests.core.test_auth_matrix import MATRIX
from tests.core.test_no_third_party import references
from tests.runs.test_admin import login

pytestmark = pytest.mark.django_db


def test_the_landing_page_links_what_the_server_offers():
    response = Client().get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    links = set(re.findall(r'<a href="([^"]+)"', html))
    assert links == {"/admin/", "/api/v1", "/docs", "/redoc", "/openapi.json", "/health"}
    assert "Workflow platform" in html and f"Version {platform_version()}" in html
    assert references(html) == []  # loads nothing from another host
    for link in links:  # and every link answers
        assert Client().get(link, follow=True).status_code == 200, link


def test_the_version_is_the_projects():
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", platform_version())


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1"])
def test_the_api_root_lists_the_resources_without_credentials(anon, path):
    response = anon.get(path)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Workflow platform" and body["api_version"] == "1.0.0"
    assert body["resources"]["agents"] == {"url": "http://testserver/api/v1/agents", "role": "viewer"}
    assert body["resources"]["audit_logs"] == {"url": "http://testserver/api/v1/audit-logs", "role": "admin"}
    assert body["links"]["auth_token"] == "http://testserver/api/v1/auth/token"
    assert body["links"]["health"] == "http://testserver/health"


def test_every_listed_url_answers(viewer, admin):
    body = viewer.get("/api/v1/").json()
    for name, resource in body["resources"].items():
        if name == "events":
            continue  # a stream that never ends; its role is checked below against the matrix
        client = admin if resource["role"] == "admin" else viewer
        assert client.get(resource["url"]).status_code == 200, name
    for name in ("docs", "redoc", "openapi", "health"):
        assert Client().get(body["links"][name]).status_code == 200, name


def test_the_root_lists_every_resource_of_the_schema_with_its_read_role(anon):
    body = anon.get("/api/v1/").json()
    listed = {resource["url"].removeprefix("http://testserver/api/v1/") for resource in body["resources"].values()}
    schema = SchemaGenerator().get_schema(request=None, public=True)
    first_segments = {path.split("/")[3] for path in schema["paths"] if path.startswith("/api/v1/")}
    assert first_segments - {"auth"} == listed
    # The role shown is the one the auth matrix asks for the list's GET.
    needed = {path: role.value for method, path, role, *_ in MATRIX if method == "get"}
    for resource in body["resources"].values():
        assert needed[resource["url"].removeprefix("http://testserver")] == resource["role"], resource


def test_the_admin_view_site_link_goes_to_the_landing_page():
    staff = login("boss", superuser=True)
    html = staff.get("/admin/").content.decode()
    assert re.search(r'<a href="/"[^>]*>\s*View site\s*</a>', html), html
