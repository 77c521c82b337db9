"""The HTTP client of the agent calls (the bridge's A2A requests), on aiohttp.

Why not httpx, which the rest of the code uses for its few one-off requests: with 100 calls in flight,
httpx (through httpcore and anyio) spent 2.5-2.8 ms of CPU per call in a benchmark where aiohttp spent
0.26 (`bench/agent_client.py`); its pool looks at every connection on every request. For the bridge
that was most of its CPU per step (docs/performance.md).

The callers see only this module: `AgentClient.post` / `get` give an `Answer` whose body is read up to a
limit, and every failure of the transport is one of the `TransportError`s below, named for what
happened (the name ends up in the step's error: "Could not reach agent at URL: ConnectError: ...").
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping

import aiohttp

USER_AGENT = "wfplatform-bridge"


class TransportError(Exception):
    """The request did not get a whole answer. `retryable`: trying again may pass."""

    retryable = True


class ConnectError(TransportError):
    """No connection: refused, unknown host, TLS handshake failed."""


class ConnectTimeout(TransportError):
    pass


class ReadTimeout(TransportError):
    pass


class ReadError(TransportError):
    """The connection broke, or the agent answered something that is not HTTP, mid-answer."""


class InvalidURL(TransportError):
    retryable = False


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise InvalidURL(f"not an http(s) URL: {exc}") from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise ConnectTimeout("no connection within the connect timeout") from exc
    except aiohttp.ServerTimeoutError as exc:
        raise ReadTimeout(str(exc) or "no data within the read timeout") from exc
    except aiohttp.ClientConnectorError as exc:
        raise ConnectError(_reason(exc.os_error)) from exc
    except (aiohttp.ClientError, OSError) as exc:
        # Disconnects, payload and protocol errors, resets: the answer is lost, the agent may be fine.
        raise ReadError(str(exc) or type(exc).__name__) from exc


def _reason(error: OSError) -> str:
    # asyncio words a refused connection "Connect call failed ('127.0.0.1', 1)": the errno says it plainly.
    if isinstance(error, ConnectionError) and error.errno:
        return f"[Errno {error.errno}] {os.strerror(error.errno)}"
    return str(error)


class Answer:
    """An HTTP answer whose body has not been read yet."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status: int = response.status
        self.headers: Mapping[str, str] = response.headers  # case-insensitive

    def declared_length(self) -> int:
        length = self._response.content_length
        return -1 if length is None else length

    async def body(self, limit: int, *, truncate: bool = False) -> bytes | None:
        """The (decoded) body, or None as soon as it passes `limit` bytes; with `truncate`, its first
        `limit` bytes. An agent that answers 50 MB, or without end, costs no more than `limit`."""
        chunks, size = [], 0
        with _translated():
            async for chunk in self._response.content.iter_any():
                if size + len(chunk) > limit:
                    if not truncate:
                        return None
                    chunks.append(chunk[: limit - size])
                    break
                chunks.append(chunk)
                size += len(chunk)
        return b"".join(chunks)

    async def lines(self, max_bytes: int) -> AsyncIterator[str]:
        """The body's lines as they come (a line ends at CR, LF or CRLF, as in SSE), without their end.
        Raises ValueError for a line longer than `max_bytes`, which is never buffered whole."""
        pending = b""
        with _translated():
            async for chunk in self._response.content.iter_any():
                pending += chunk
                # A CR at the end may be the first half of a CRLF split across two chunks: kept for the next.
                cut = len(pending) - pending.endswith(b"\r")
                *done, rest = pending[:cut].replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
                pending = rest + pending[cut:]
                for line in done:
                    if len(line) > max_bytes:
                        raise ValueError("a line is too long")
                    yield line.decode("utf-8", errors="replace")
                if len(pending) > max_bytes:
                    raise ValueError("a line is too long")
        if pending.rstrip(b"\r"):
            yield pending.rstrip(b"\r").decode("utf-8", errors="replace")


class AgentClient:
    """One connection pool for every agent call of a process: a kept-alive connection per agent found
    without a scan, TCP_NODELAY (aiohttp's default), no redirects followed, no proxy from the environment."""

    def __init__(self, *, max_connections: int = 100) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AgentClient:
        # An idle connection is dropped after 4 s, before the agent's server drops it (uvicorn and Node
        # after 5 s): a request sent on a connection the server is closing at that moment is lost.
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, keepalive_timeout=4)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def post(
        self, url: str, body: dict, headers: Mapping[str, str], *, connect_timeout: float, read_timeout: float | None
    ) -> contextlib.AbstractAsyncContextManager[Answer]:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        return self._request("POST", url, data, headers, connect_timeout, read_timeout)

    def get(
        self, url: str, headers: Mapping[str, str], *, connect_timeout: float, read_timeout: float | None
    ) -> contextlib.AbstractAsyncContextManager[Answer]:
        return self._request("GET", url, None, headers, connect_timeout, read_timeout)

    @contextlib.asynccontextmanager
    async def _request(self, method, url, data, headers, connect_timeout, read_timeout) -> AsyncIterator[Answer]:
        if self._session is None:
            raise RuntimeError("AgentClient used outside `async with`")
        # The whole call's deadline is the caller's (asyncio.timeout); these bound each wait on the socket.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        with _translated():
            response = await self._session.request(
                method, url, data=data, headers=headers, timeout=timeout, allow_redirects=False
            )
        try:
            yield Answer(response)
        finally:
            # A body read whole gives the connection back to the pool; one left unread closes it.
            response.release()
