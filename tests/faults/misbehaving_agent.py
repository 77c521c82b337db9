"""An A2A agent that misbehaves on purpose, served from a thread of the test process.

`/huge` answers every call with a well-formed JSON-RPC result (a completed 0.3 task) whose text part
is `HUGE_BYTES` long, with its Content-Length; `/endless` starts such an answer and streams its text
part forever (chunked), until the client hangs up. Neither has an agent card (404), so a client
speaks A2A 0.3 to them. `calls` records the correlation id of every call received.
"""

import contextlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE_BYTES = 50 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)
ENDLESS_SECONDS = 120  # even a client that reads forever gets an end


def _answer(request_id) -> tuple[bytes, bytes]:
    """The JSON-RPC response around the text part: what comes before the text, and after it."""
    marker = "@@TEXT@@"
    result = {
        "kind": "task",
        "id": "misbehaving-task",
        "contextId": "misbehaving-context",
        "status": {"state": "completed"},
        "artifacts": [{"artifactId": "a1", "parts": [{"kind": "text", "text": marker}]}],
    }
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})
    before, after = body.split(marker)
    return before.encode(), after.encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: the test output is not the place
        pass

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.calls.append({"path": self.path, "correlation_id": self.headers.get("X-Correlation-ID")})
        before, after = _answer(body.get("id"))
        with contextlib.suppress(OSError):  # the client hung up: what a size limit does
            if self.path.rstrip("/").endswith("/endless"):
                self.endless(before)
            else:
                self.huge(before, after)

    def huge(self, before: bytes, after: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(before) + HUGE_BYTES + len(after)))
        self.end_headers()
        self.wfile.write(before)
        for _ in range(HUGE_BYTES // len(CHUNK)):
            self.wfile.write(CHUNK)
        self.wfile.write(after)

    def endless(self, before: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        ends = time.monotonic() + ENDLESS_SECONDS
        for data in itertools.chain([before], itertools.repeat(CHUNK)):
            if time.monotonic() > ends or self.server.stopping.is_set():
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.close_connection = True


class MisbehavingAgent:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.calls = []
        self.server.stopping = threading.Event()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="misbehaving-agent", daemon=True)

    @property
    def calls(self) -> list[dict]:
        return self.server.calls

    def __enter__(self) -> "MisbehavingAgent":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()
