"""No page of ours loads anything from another host: /docs, /redoc, the admin's pages, the browsable API
and `/` are fetched, and every `src=`, `href=`, `@import` and `url(` in them (and in the local stylesheets
they link) must stay on this server. Links a person may follow (`<a href>`) load nothing and are left out.
Scripts are checked by where they come from (their own code is the sidecar packages', pinned)."""

import re
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import NoReverseMatch, reverse

from runs.services import run_execute
from tests.factories import AgentFactory, UserFactory
from tests.runs.helpers import workflow_with_agents

pytestmark = pytest.mark.django_db

OURS = "http://testserver/"
ATTRIBUTE = re.compile(
    r"<(?P<tag>[a-zA-Z][\w-]*)\b[^>]*?\b(?:src|href|srcset|action|poster|data)\s*=\s*[\"']?(?P<url>[^\"'\s>]+)", re.S
)
CSS = re.compile(r"@import\s+(?:url\()?\s*[\"']?(?P<a>[^\"')\s;]+)|url\(\s*[\"']?(?P<b>[^\"')]+)")


def foreign(url: str, base: str = OURS) -> bool:
    absolute = urljoin(base, url.strip())
    parts = urlsplit(absolute)
    if parts.scheme in ("data", "blob", "about", "javascript", "mailto"):
        return False
    return parts.netloc != "testserver"


def references(text: str, base: str = OURS) -> list[str]:
    """What a page or stylesheet would fetch from another host."""
    found = [m["url"] for m in ATTRIBUTE.finditer(text) if m["tag"].lower() != "a"]
    found += [m["a"] or m["b"] for m in CSS.finditer(text)]
    return [url for url in found if foreign(url, base)]


def stylesheets(html: str) -> list[str]:
    links = re.findall(r"<link\b[^>]*\bhref=[\"']([^\"']+\.css)[^\"']*[\"']", html)
    return [url for url in links if not foreign(url)]


def test_the_checker_finds_what_it_must():
    page = (
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css2?family=Roboto">'
        '<script src="//cdn.example.com/x.js"></script><img src=http://img.example.com/a.png>'
        "<style>@import 'https://x.example.com/a.css'; body { background: url(https://y.example.com/b.png) }</style>"
        '<a href="https://www.django-rest-framework.org/">docs</a><img src="/static/a.png">'
        '<div style="background:url(data:image/png;base64,AAAA)"></div>'
    )
    assert references(page) == [
        "https://fonts.googleapis.com/css2?family=Roboto",
        "//cdn.example.com/x.js",
        "http://img.example.com/a.png",
        "https://x.example.com/a.css",
        "https://y.example.com/b.png",
    ]


def pages(client) -> list[str]:
    """Our HTML pages: docs, the browsable API, `/`, and every admin page a superuser can open."""
    workflow = workflow_with_agents("walker", name="walked")
    run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    AgentFactory()
    paths = ["/", "/docs", "/redoc", "/api-auth/login/", "/admin/", "/admin/password_change/"]
    paths += ["/api/v1/", "/api/v1/agents", "/api/v1/workflows", f"/api/v1/workflows/{workflow.id}", "/api/v1/runs"]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        paths.append(reverse(f"admin:{info[0]}_{info[1]}_changelist"))
        try:
            paths.append(reverse(f"admin:{info[0]}_{info[1]}_add"))
        except NoReverseMatch:
            pass
        first = model._default_manager.first()
        if first is not None:
            paths.append(reverse(f"admin:{info[0]}_{info[1]}_change", args=[first.pk]))
    return paths


def test_no_page_loads_anything_from_another_host():
    client = Client()
    anonymous = ["/", "/docs", "/redoc", "/api-auth/login/", "/admin/login/"]
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    problems, checked_css, fetched = [], set(), 0
    for path, session in [(p, False) for p in anonymous] + [(p, True) for p in pages(client)]:
        browser = client if session else Client()
        response = browser.get(path, HTTP_ACCEPT="text/html", follow=True)
        if "html" not in response.get("Content-Type", ""):
            continue
        fetched += 1
        html = response.content.decode()
        problems += [f"{path}: {url}" for url in references(html)]
        for sheet in stylesheets(html):
            if sheet in checked_css:
                continue
            checked_css.add(sheet)
            found = finders.find(urlsplit(sheet).path.removeprefix("/static/"))
            assert found, f"{path} links {sheet}, which this server does not have"
            with open(found, encoding="utf-8", errors="replace") as handle:
                problems += [f"{sheet}: {url}" for url in references(handle.read(), urljoin(OURS, sheet))]
    assert fetched > 20 and checked_css  # the walk really saw the pages and their stylesheets
    assert problems == []


def test_the_stock_redoc_page_would_fail_it():
    # Why /redoc has a template of ours: drf-spectacular's fetches Montserrat and Roboto from Google.
    from django.template.loader import render_to_string

    stock = render_to_string("drf_spectacular/redoc.html", {"schema_url": "/openapi.json", "settings": "{}"})
    assert any("fonts.googleapis.com" in url for url in references(stock))
    ours = render_to_string("core/redoc.html", {"schema_url": "/openapi.json", "settings": "{}"})
    assert references(ours) == []
