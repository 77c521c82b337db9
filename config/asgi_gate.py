"""What config/asgi.py needs beyond Django: a bound on the requests being handled at once, and a way
to run sync start-up work when uvicorn imports the application inside its event loop."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections


def outside_the_loop(fn, *args):
    """Runs `fn` here, or in a thread of its own when an event loop runs in this one (the ORM is sync only)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)

    def call():
        try:
            return fn(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


class RequestGate:
    def __init__(self, app, limit: int | None = None):
        self.app, self.limit = app, limit
        self.semaphores: dict = {}  # per event loop (tests may run more than one)

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in self.semaphores:
            self.semaphores = {loop: asyncio.Semaphore(self.limit or settings.WEB_MAX_ACTIVE_REQUESTS)}
        return self.semaphores[loop]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        gate = self.semaphore()
        await gate.acquire()
        held = True

        async def send_and_release(message):
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                gate.release()  # headers are out: a stream goes on without holding a place
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            if held:
                gate.release()
