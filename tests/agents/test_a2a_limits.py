"""Agent answers and agent cards are read only up to a limit, so one agent cannot fill the bridge's memory."""

import contextlib
import json
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents import a2a
from tests.agents.test_a2a_client import CARD_10, OK_03, call, completed_task
from tests.factories import AgentFactory
from tests.support.http_server import StubServer

LIMIT = 1_048_576
TOO_LARGE = f"Agent's response is larger than the {LIMIT}-byte limit (AGENT_RESPONSE_MAX_BYTES)"


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.AGENT_RESPONSE_MAX_BYTES = LIMIT
    a2a.clear_protocol_cache()
    yield
    a2a.clear_protocol_cache()


@contextlib.contextmanager
def agent_server(answer):
    """A real HTTP server (HTTP/1.0) whose POSTs `answer(handler)` writes the answer to; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            answer(self)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


class HangUpStub(StubServer):
    """A StubServer that takes the client hanging up mid-answer quietly (here it is what is meant to happen)."""

    def __init__(self, routes: dict):
        super().__init__(routes)
        self.httpd.handle_error = lambda request, address: None


def padded_answer(size: int) -> bytes:
    """A valid JSON-RPC answer of exactly `size` bytes (trailing whitespace is still JSON)."""
    body = json.dumps(OK_03).encode()
    return body + b" " * (size - len(body))


def test_an_endless_answer_ends_with_the_size_error_quickly_and_in_bounded_memory():
    """Before: the whole 50 MB was read into memory, then failed as 'not JSON'."""
    total, sent, chunk = 50 * 1024 * 1024, [0], b" " * 65_536

    def endless(handler):
        handler.end_headers()  # no Content-Length: the body ends when the connection does
        try:
            while sent[0] < total:
                handler.wfile.write(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass  # the client hung up

    tracemalloc.start()
    try:
        with agent_server(endless) as url:
            started = time.monotonic()
            result = call(url, protocol="0.3", max_retries=3, timeout_ms=30_000)
            elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error == TOO_LARGE
    assert result.attempts == 1  # not retried: the agent would answer the same
    assert elapsed < 5
    assert peak < 8 * LIMIT, f"{peak} bytes allocated at the peak"
    assert sent[0] < total / 2  # the agent was cut off long before its end


def test_a_content_length_over_the_limit_fails_at_once_without_reading_the_body():
    """The agent announces 100 MB and then sends nothing: the call must not wait for the body."""

    def announce(handler):
        handler.send_header("Content-Length", str(100 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.flush()
        time.sleep(2)  # the body never comes

    with agent_server(announce) as url:
        started = time.monotonic()
        result = call(url, protocol="0.3", timeout_ms=3000)
        assert result.error == TOO_LARGE
        assert time.monotonic() - started < 1.5


def test_an_answer_just_under_the_limit_succeeds():
    with HangUpStub({"/": (200, padded_answer(LIMIT), 0)}) as server:
        result = call(server.url + "/", protocol="0.3")
    assert result.ok, result.error
    assert result.output == {"answer": 42, "task_id": "t1", "context_id": "c1"}


def test_an_answer_one_byte_over_the_limit_fails():
    with HangUpStub({"/": (200, padded_answer(LIMIT + 1), 0)}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=2)
    assert result.error == TOO_LARGE
    assert len(server.requests) == 1


def test_a_large_error_answer_keeps_its_status_and_is_retried():
    """Only a snippet of an error page is kept, so a large one is read no further than that."""
    with HangUpStub({"/": [(503, b"x" * (3 * LIMIT), 0), (200, OK_03, 0)]}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=1)
    assert result.ok, result.error
    assert result.attempts == 2


def test_a_card_larger_than_the_card_limit_is_ignored_like_a_missing_one():
    huge_card = {**CARD_10, "description": "x" * 2_000_000}
    routes = {"/.well-known/agent-card.json": (200, huge_card, 0), "/": (200, OK_03, 0)}
    with HangUpStub(routes) as server:
        result = call(server.url + "/")
    assert result.ok, result.error
    assert server.bodies[-1]["method"] == "message/send"  # 0.3, as without a card


@pytest.mark.django_db
def test_the_health_check_refuses_a_card_larger_than_the_card_limit(viewer):
    huge_card = {**CARD_10, "description": "x" * 2_000_000}
    with HangUpStub({"/.well-known/agent-card.json": (200, huge_card, 0)}) as server:
        body = viewer.get(f"/api/v1/agents/{AgentFactory(url=server.url).id}/health").json()
    assert body["status"] == "unhealthy"
    assert "answered more than 1048576 bytes" in body["error"]


def test_the_limit_also_holds_for_an_agent_speaking_1_0():
    routes = {"/.well-known/agent-card.json": (200, CARD_10, 0), "/": (200, padded_answer(LIMIT + 10), 0)}
    with HangUpStub(routes) as server:
        assert call(server.url + "/").error == TOO_LARGE
    ok = completed_task("1.0", {"n": 1})
    with HangUpStub({"/.well-known/agent-card.json": (200, CARD_10, 0), "/": (200, ok, 0)}) as server:
        assert call(server.url + "/").ok
