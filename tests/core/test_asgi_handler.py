"""The ASGI application runs a request's middleware chain and view in one hop to a thread
(config/asgi_handler.py). Django's own ASGI handler builds the chain in async mode: each MiddlewareMixin
hook then runs through sync_to_async of its own (measured: 12-14 ms of CPU per execute under uvicorn
against 7-9 under gunicorn)."""

import asyncio

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application

from config.asgi_handler import SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handler():
    """The handler under test; its kept threads' connections closed afterwards (outside config/asgi.py the
    settings keep connections open between requests, and the test database could not be dropped)."""
    application = SyncChainASGIHandler()
    yield application
    application.threads_end()


def get(application, path: str, headers=()) -> tuple[int, bytes, int]:
    """(status, body, sync_to_async calls) of one GET through `application`."""
    calls = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        calls.append(self.func)
        return await original(self, *args, **kwargs)

    async def request():
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), *headers],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(10)
        body = b""
        while True:
            message = await communicator.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(10)
        return start["status"], body

    SyncToAsync.__call__ = counted
    try:
        status, body = asyncio.run(request())
    finally:
        SyncToAsync.__call__ = original
    return status, body, len(calls)


def test_a_request_takes_one_hop_to_a_thread_where_django_takes_many(viewer, handler):
    headers = [(b"x-api-key", viewer.raw_key.encode())]
    status, body, hops = get(handler, "/api/v1/agents", headers)
    assert status == 200 and b'"items"' in body
    _, _, django_hops = get(get_asgi_application(), "/api/v1/agents", headers)
    # Ours: the chain, plus what Django's handler itself sends to threads (request_started/finished,
    # closing the response); Django's: one more for each hook of each middleware as well.
    assert hops <= 4 < django_hops, (hops, django_hops)


def test_errors_and_the_middleware_still_answer(anon, handler):
    status, body, _ = get(handler, "/api/v1/agents")
    assert status == 401 and b"detail" in body  # authentication, through the whole chain
    status, _, _ = get(handler, "/no-such-page")
    assert status == 404


def test_requests_reuse_threads_but_never_share_one_at_the_same_time(anon, handler):
    import threading

    from django.core.signals import request_started

    seen = []
    together = threading.Barrier(2, timeout=10)

    def record(**kwargs):
        seen.append(threading.get_ident())

    def meet(**kwargs):  # both requests must be in their threads at once: a shared thread would time out
        together.wait()

    request_started.connect(record)
    try:
        get(handler, "/health")
        get(handler, "/health")
        assert len(seen) == 2 and seen[0] == seen[1]  # the second request ran in the first one's thread
        assert seen[0] != threading.get_ident()

        request_started.connect(meet)
        seen.clear()

        def two_at_once():
            done = [threading.Thread(target=get, args=(handler, "/health")) for _ in range(2)]
            for thread in done:
                thread.start()
            for thread in done:
                thread.join(20)

        two_at_once()
        assert len(set(seen)) == 2 and not together.broken
    finally:
        request_started.disconnect(record)
        request_started.disconnect(meet)
    assert len(handler.idle) == 2  # both kept for the next requests
