"""Django's ASGI handler with its middleware chain run as one sync call, as under WSGI.

Django builds the chain for ASGI in async mode: every MiddlewareMixin middleware (Security, Session,
Common, Csrf, Auth, Messages, the history and Prometheus ones) then runs each of its hooks through
sync_to_async, and a sync-only middleware in between switches back with async_to_sync: 20
sync_to_async calls a request, against 3 here (tests/core/test_asgi_handler.py). Measured on
`POST /workflows/{id}/execute` under uvicorn: 12-14 ms of CPU a request before, 9.2-9.5 after (7-9
under gunicorn). Here the chain is built in sync mode and called once through sync_to_async (the
request's own thread, as Django does for a sync view). Responses are still sent by the ASGI handler
on the event loop: a streaming response over an async iterator (the live event streams) is iterated
there, holding no thread.

Each request's sync code runs in one thread, as in Django, but the threads are kept for the next
requests instead of started and ended with each one: starting a thread (and its one-thread executor)
for every request was 8 % of the web process's CPU under an execute load (py-spy). A request has its
thread to itself until it ends (asgiref's ThreadSensitiveContext with an executor of ours), so nothing
else runs in it meanwhile; its database connection is closed at the end of the request as before
(given back to the pool: config/asgi.py).
"""

import functools
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from core.db import threads_end


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self.idle: list[ThreadPoolExecutor] = []  # one-thread executors between requests (the loop's only)
        self.lent: set[ThreadPoolExecutor] = set()

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)
        # thread_sensitive: the request's own thread, where Django would run a sync view.
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django's refusal
        thread = self.idle.pop() if self.idle else self.thread_new()
        self.lent.add(thread)
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self.give_back(thread)

    def thread_new(self) -> ThreadPoolExecutor:
        thread = ThreadPoolExecutor(1, thread_name_prefix="request")
        # A live event stream lets its request's thread go when it starts (runs.live.request_thread_release).
        thread.give_back = functools.partial(self.give_back, thread)
        return thread

    def give_back(self, thread: ThreadPoolExecutor) -> None:
        if thread not in self.lent:
            return  # given back already (by a stream, when it started)
        self.lent.discard(thread)
        # As many as may be handled at once (the gate, config/asgi_gate.py); any more end.
        if len(self.idle) < settings.WEB_MAX_ACTIVE_REQUESTS:
            self.idle.append(thread)
        else:
            thread.shutdown(wait=False)

    def threads_end(self) -> None:
        """Ends the kept threads, their database connections closed first (for servers that stop in a
        process that goes on: tests)."""
        while self.idle:
            threads_end(self.idle.pop())
