import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from core.roles import Role
from core.services import api_key_create
from tests.factories import UserFactory

ROLES = [Role.VIEWER, Role.OPERATOR, Role.EDITOR, Role.ADMIN]


def make_user(username: str, role: Role | None):
    user = UserFactory(username=username)
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def client_for(db):
    """client_for(role) -> an APIClient authenticated with an API key of that role."""

    def build(role: Role, username: str | None = None):
        user = make_user(username or f"{role}-user", role)
        api_key, raw = api_key_create(user=user, role=role, name=f"{role} key")
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        client.user, client.api_key, client.raw_key = user, api_key, raw
        return client

    return build


@pytest.fixture
def viewer(client_for):
    return client_for(Role.VIEWER)


@pytest.fixture
def operator(client_for):
    return client_for(Role.OPERATOR)


@pytest.fixture
def editor(client_for):
    return client_for(Role.EDITOR)


@pytest.fixture
def admin(client_for):
    return client_for(Role.ADMIN)


@pytest.fixture
def staff(db):
    """A superuser logged in to the admin with the Django test client (password login, as a person)."""
    get_user_model().objects.create_superuser("boss", "", "pw-123456-long")
    client = Client()
    assert client.login(username="boss", password="pw-123456-long")
    return client


@pytest.fixture(autouse=True)
def bridges_end(monkeypatch):
    """Bridges made in a test end their database threads after it: each thread keeps a connection of
    its own, and left open they stopped the test database from being dropped at the end of the run."""
    from core.db import threads_end
    from runs import bridge

    made = []
    original = bridge.Bridge.__init__

    def recorded(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(bridge.Bridge, "__init__", recorded)
    yield
    for each in made:
        threads_end(each.db)
