"""Receivers for the webhook tests: pytest-httpserver (threaded, so a hanging handler blocks no other
request) and a raw TCP server for receivers that misbehave below HTTP."""

import contextlib
import json
import re
import socket
import threading

import pytest
from django.db import transaction
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook

from webhooks.dispatch import webhook_deliveries_sweep
from webhooks.models import Delivery
from webhooks.services import webhook_create


@pytest.fixture(scope="session")
def make_httpserver():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@contextlib.contextmanager
def committed():
    """The block's on-commit callbacks run at its end, as if its work had committed (the test itself
    runs in one transaction that never does), and with them the eager Celery send task. Each runs
    once and is dropped (pytest-django's capture leaves them registered, and the next block's sends
    would then think a send is already asked for)."""
    connection = transaction.get_connection()
    start = len(connection.run_on_commit)
    yield
    while len(connection.run_on_commit) > start:
        _, callback, _ = connection.run_on_commit.pop(start)
        callback()


@pytest.fixture
def deliver(db):
    """`with deliver(): ...`: see `committed`."""
    return committed


def endpoint(url: str, event_types=("*",), **data):
    return webhook_create(user=None, data={"url": url, "event_types": list(event_types), **data})


def sweep_due() -> int:
    """What the beat sweep does once the retries' time has come (no sleeping for minutes)."""
    from django.utils import timezone

    Delivery.objects.filter(next_attempt_at__isnull=False).update(next_attempt_at=timezone.now())
    return webhook_deliveries_sweep()


def received(httpserver, secret: str | None = None) -> list[dict]:
    """The bodies the receiver got, in order; each one's signature verified when a secret is given."""
    bodies = []
    for request, _ in httpserver.log:
        if secret is not None:
            Webhook(secret).verify(request.get_data(), dict(request.headers))
        bodies.append(json.loads(request.get_data()))
    return bodies


def read_request(conn) -> bytes:
    """Reads one whole request (headers and Content-Length body): closing with bytes still unread
    makes the kernel answer with a reset instead of a clean hang-up, which is a different error."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while match and len(body) < int(match.group(1)):
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class RawServer:
    """A TCP listener whose `behaviour(conn)` runs for each connection in a thread of its own."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with contextlib.suppress(OSError), conn:
            self.behaviour(conn)


@pytest.fixture
def raw_server():
    servers = []

    def start(behaviour) -> RawServer:
        server = RawServer(behaviour)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        with contextlib.suppress(OSError):
            server.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.sock.close()
