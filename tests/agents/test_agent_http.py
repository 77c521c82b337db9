"""The agent calls' HTTP client (agents/agent_http.py) against real sockets: bodies read up to a limit,
stream lines split however the chunks fall, and each transport failure named and classed."""

import asyncio
import gzip
import socket
import threading
import time

import pytest

from agents.agent_http import AgentClient, ConnectError, InvalidURL, ReadError, ReadTimeout


class RawServer:
    """Answers each connection with `pieces` (bytes written one by one, `pause` apart), then closes it."""

    def __init__(self, pieces: list[bytes], pause: float = 0.05):
        self.pieces, self.pause = pieces, pause
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/agent"
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                for piece in self.pieces:
                    conn.sendall(piece)
                    time.sleep(self.pause)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()


def head(length: int | None = None, extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Connection: close\r\n"
    return f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{framing}{extra}\r\n".encode()


def run(coroutine_function, *args):
    async def go():
        async with AgentClient() as client:
            return await coroutine_function(client, *args)

    return asyncio.run(go())


async def lines_of(client, url, max_bytes=1000):
    async with client.post(url, {}, {}, connect_timeout=2, read_timeout=2) as answer:
        return [line async for line in answer.lines(max_bytes)]


async def body_of(client, url, limit, truncate=False):
    async with client.post(url, {}, {}, connect_timeout=2, read_timeout=2) as answer:
        return answer.status, await answer.body(limit, truncate=truncate)


def test_lines_end_at_lf_crlf_or_cr_wherever_the_chunks_split_them():
    pieces = [head(), b"data: a\r", b"\ndata: b\n", b"\r", b"\n: comment\rdata: c", b"\r\n\r\nlast"]
    with RawServer(pieces) as server:
        assert run(lines_of, server.url) == ["data: a", "data: b", "", ": comment", "data: c", "", "last"]


def test_a_line_longer_than_the_bound_is_refused_before_it_ends():
    pieces = [head(), b"data: " + b"x" * 600, b"y" * 600, b"z" * 600]
    with RawServer(pieces) as server, pytest.raises(ValueError, match="too long"):
        run(lines_of, server.url, 1000)


def test_a_body_is_decoded_and_read_up_to_its_limit():
    packed = gzip.compress(b"0123456789" * 100)
    pieces = [head(len(packed), "Content-Encoding: gzip\r\n"), packed]
    with RawServer(pieces, pause=0) as server:
        assert run(body_of, server.url, 1000) == (200, b"0123456789" * 100)
        assert run(body_of, server.url, 999) == (200, None)
        assert run(body_of, server.url, 15, True) == (200, b"012345678901234")


def test_a_connection_cut_mid_body_is_a_read_error():
    with RawServer([head(1000), b"only a part"]) as server, pytest.raises(ReadError) as caught:
        run(body_of, server.url, 10_000)
    assert caught.value.retryable


def test_an_answer_that_is_not_http_is_a_read_error():
    with RawServer([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"]) as server, pytest.raises(ReadError):
        run(body_of, server.url, 10_000)


def test_a_refused_connection_is_a_connect_error_and_may_be_retried():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(ConnectError) as caught:
        run(body_of, f"http://127.0.0.1:{port}/", 100)
    assert caught.value.retryable and "refused" in str(caught.value).lower()


def test_silence_past_the_read_timeout_is_a_read_timeout():
    async def silent(client, url):
        async with client.post(url, {}, {}, connect_timeout=2, read_timeout=0.2) as answer:
            return await answer.body(100)

    with RawServer([head(10)], pause=2) as server, pytest.raises(ReadTimeout):
        run(silent, server.url)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/agent", "not a url", "http://"])
def test_a_url_that_is_not_http_is_invalid_and_not_retried(url):
    with pytest.raises(InvalidURL) as caught:
        run(body_of, url, 100)
    assert not caught.value.retryable
