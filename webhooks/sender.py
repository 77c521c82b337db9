"""One HTTP attempt of a webhook delivery: sign, POST, read a little of the answer, classify it.

No database here: the dispatcher (webhooks/dispatch.py) runs attempts in threads and records them.
Receivers are untrusted, so every attempt is bounded: one deadline for the whole request (a receiver
that answers a byte at a time is cut off too), at most WEBHOOK_RESPONSE_LIMIT_BYTES of the body read,
no redirects, no proxies from the environment (they would go around the address guard).
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import httpcore
import httpx
from django.conf import settings
from django.utils import timezone

from webhooks.addresses import UnsafeAddress, allowed_addresses
from webhooks.signing import signature

log = logging.getLogger(__name__)
USER_AGENT = "workflow-platform-webhooks/1"

# Outcome kinds: what the dispatcher does next.
OK, RETRY, FAIL, GONE = "ok", "retry", "fail", "gone"


@dataclass
class Outcome:
    kind: str
    attempted_at: datetime
    duration_ms: int
    status_code: int | None = None
    response_body: str = ""
    error: str = ""
    retry_after: int | None = None  # seconds, from a 429 / 503 Retry-After header


_local = threading.local()  # the running attempt's deadline (time.monotonic()), per sending thread


def _bounded(timeout: float | None) -> float | None:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the attempt's time is up")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """Every socket operation waits at most until the attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes, timeout=None):
        return self._stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer, timeout=None):
        self._stream.write(buffer, _bounded(timeout))

    def close(self):
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    """Connects only to checked addresses (unless private URLs are allowed), under the deadline."""

    def __init__(self, *, guard: bool):
        self.guard = guard

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _bounded(timeout)
        if not self.guard:
            return _DeadlineStream(super().connect_tcp(host, port, timeout, local_address, socket_options))
        try:
            addresses = allowed_addresses(host, port)
        except OSError as exc:  # socket.gaierror: the name does not resolve (now): a network error, retried
            raise httpcore.ConnectError(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from exc
        error = httpcore.ConnectError(f"no address to connect to for {host}")
        for address in addresses:  # the checked addresses themselves, in order, as create_connection would
            try:
                stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
                return _DeadlineStream(stream)
            except httpcore.ConnectError as exc:
                error = exc
        raise error


class _Transport(httpx.HTTPTransport):
    def __init__(self, *, guard: bool):
        super().__init__(trust_env=False, retries=0)
        # httpx builds its connection pool without a way to pass a network backend: build it again
        # with ours. No connection limit of its own (the sending threads are the limit), and as many
        # kept alive as there are threads, so a busy receiver is not reconnected to for every request.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=None,
            max_keepalive_connections=settings.WEBHOOK_MAX_IN_FLIGHT,
            keepalive_expiry=5.0,
            network_backend=_Backend(guard=guard),
        )


_clients: dict[tuple[int, bool], httpx.Client] = {}
_clients_lock = threading.Lock()


def _client() -> httpx.Client:
    """One client (connection pool) per process and guard setting, shared by the sending threads."""
    key = (os.getpid(), not settings.WEBHOOK_ALLOW_PRIVATE_URLS)  # a forked worker gets its own
    with _clients_lock:
        if key not in _clients:
            _clients[key] = httpx.Client(transport=_Transport(guard=key[1]), follow_redirects=False, trust_env=False)
        return _clients[key]


def headers_for(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "accept-encoding": "identity",  # the excerpt is read raw: a compressed body would be unreadable
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }


def _excerpt(response: httpx.Response, limit: int) -> tuple[str, str]:
    """At most `limit` bytes of the body, read as they stream in (the rest is never read), and a note
    when reading stopped on an error: the status has come, so the attempt is judged by it."""
    kept, size, note = [], 0, ""
    try:
        for chunk in response.iter_raw() if limit > 0 else ():
            kept.append(chunk[: limit - size])
            size += len(kept[-1])
            if size >= limit:
                break
    except httpx.HTTPError as exc:
        note = f"The response body was cut short ({type(exc).__name__})."
    # PostgreSQL text cannot hold NUL characters.
    return b"".join(kept).decode("utf-8", errors="replace").replace("\x00", "\ufffd"), note


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


def _classify(response: httpx.Response) -> tuple[str, str]:
    code = response.status_code
    if 200 <= code < 300:
        return OK, ""
    if code == 410:
        return GONE, "410 Gone: the receiver asked for no more deliveries; the endpoint is disabled."
    if code == 429 or code >= 500:
        return RETRY, f"HTTP {code}"
    if 300 <= code < 400:
        location = response.headers.get("location", "")
        return FAIL, f"HTTP {code}: redirect to {location[:500]!r} not followed; give the final URL."
    return FAIL, f"HTTP {code}: refused by the receiver; not retried."


def attempt(*, url: str, secret: str, msg_id: str, body: bytes) -> Outcome:
    """POSTs `body` once. Never raises: whatever happens becomes an Outcome."""
    attempted_at = timezone.now()
    started = time.monotonic()
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    headers = headers_for(secret=secret, msg_id=msg_id, timestamp=int(time.time()), body=body)
    _local.deadline = started + timeout

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        with _client().stream("POST", url, content=body, headers=headers, timeout=timeout) as response:
            excerpt, note = _excerpt(response, settings.WEBHOOK_RESPONSE_LIMIT_BYTES)
            kind, error = _classify(response)
            return Outcome(
                kind,
                attempted_at,
                elapsed(),
                status_code=response.status_code,
                response_body=excerpt,
                error=" ".join(part for part in (error, note) if part),
                retry_after=_retry_after(response),
            )
    except UnsafeAddress as exc:
        return Outcome(FAIL, attempted_at, elapsed(), error=f"{exc} Not retried.")
    except httpx.TimeoutException:
        return Outcome(RETRY, attempted_at, elapsed(), error=f"Timed out after {timeout}s")
    except httpx.HTTPError as exc:  # connection refused or reset, closed mid-answer, bad HTTP, ...
        return Outcome(RETRY, attempted_at, elapsed(), error=f"{type(exc).__name__}: {exc}"[:2000])
    except Exception as exc:  # noqa: BLE001 - a receiver must never crash the worker: logged, retried
        log.exception("webhook %s: unexpected error posting to %s", msg_id, url)
        return Outcome(RETRY, attempted_at, elapsed(), error=f"Unexpected {type(exc).__name__}: {exc}"[:2000])
    finally:
        _local.deadline = None
