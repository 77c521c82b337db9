"""A real HTTP A2A agent whose tasks take time, for the tests of following tasks (both protocol versions).

`SendMessage` / `message/send` answers a task in `working` (or `input-required` with `asks`); the task
completes `work` seconds later (never with `work=None`). It answers `GetTask`, streams with
`SubscribeToTask` when its card says so, takes `CancelTask`, and records every request. `bad` makes it
misbehave: "changes-id", "unknown-task", "garbage-stream", "drops-stream", "get-500".
"""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

V10 = "1.0"


class TaskAgent:
    def __init__(self, *, protocol="0.3", streams=False, work: float | None = 0.5, asks=None, bad=None):
        self.protocol, self.streams, self.work, self.asks, self.bad = protocol, streams, work, asks, bad
        self.requests: list[dict] = []  # JSON-RPC bodies, in order
        self.tasks: dict[str, dict] = {}  # id -> {"context", "done_at", "state", "answer"}
        self.lock = threading.RLock()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                agent.card(self)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                body["_headers"] = dict(self.headers)
                with agent.lock:
                    agent.requests.append(body)
                agent.answer(self, body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- what the tests look at ---------------------------------------------------------------------

    def calls(self, *methods: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] in methods]

    @property
    def sent(self) -> list[dict]:
        return self.calls("SendMessage", "message/send")

    @property
    def polls(self) -> list[dict]:
        return self.calls("GetTask", "tasks/get")

    @property
    def cancels(self) -> list[dict]:
        return self.calls("CancelTask", "tasks/cancel")

    @property
    def subscribes(self) -> list[dict]:
        return self.calls("SubscribeToTask", "tasks/resubscribe")

    # --- the agent ----------------------------------------------------------------------------------

    def card(self, handler):
        capabilities = {"streaming": self.streams}
        if self.protocol == V10:
            card = {
                "name": "tasks",
                "supportedInterfaces": [{"url": self.url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
                "capabilities": capabilities,
            }
        else:
            card = {"name": "tasks", "protocolVersion": "0.3.0", "url": self.url, "capabilities": capabilities}
        self.send(handler, 200, card)

    def state(self, task_id: str) -> str:
        task = self.tasks[task_id]
        if task["state"] == "working" and task["done_at"] is not None and time.monotonic() >= task["done_at"]:
            task["state"] = "completed"
        return task["state"]

    def wire_state(self, state: str) -> str:
        return f"TASK_STATE_{state.upper().replace('-', '_')}" if self.protocol == V10 else state

    def part(self, kind: str, value) -> dict:
        if self.protocol == V10:
            return {kind: value}
        return {"kind": kind, kind: value}

    def task_json(self, task_id: str) -> dict:
        task, state = self.tasks[task_id], self.state(task_id)
        status = {"state": self.wire_state(state)}
        if state == "input-required" and self.asks:
            status["message"] = {
                "messageId": "q",
                "role": "ROLE_AGENT" if self.protocol == V10 else "agent",
                "parts": [self.part("text", self.asks), self.part("data", {"field": "name"})],
            }
        body = {"id": task_id, "contextId": task["context"], "status": status}
        if state == "completed":
            body["artifacts"] = [{"artifactId": "a", "parts": [self.part("data", task["answer"])]}]
        if self.bad == "changes-id" and len(self.polls) > 1:
            body["id"] = "someone-else"
        return body if self.protocol == V10 else {"kind": "task", **body}

    def result(self, handler, request_id, result):
        self.send(handler, 200, {"jsonrpc": "2.0", "id": request_id, "result": result})

    def error(self, handler, request_id, code, message):
        self.send(handler, 200, {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})

    def answer(self, handler, body):
        method, params, rid = body["method"], body.get("params") or {}, body.get("id")
        if method in ("SendMessage", "message/send"):
            message = params["message"]
            task_id = message.get("taskId")
            with self.lock:
                if task_id in self.tasks:  # a reply in the agent's own task
                    reply = [p.get("text") or p.get("data") for p in message["parts"]]
                    self.tasks[task_id].update(
                        state="working", done_at=time.monotonic() + (self.work or 0), answer={"reply": reply}
                    )
                else:
                    task_id = f"agent-task-{uuid.uuid4().hex[:8]}"
                    self.tasks[task_id] = {
                        "context": f"ctx-{task_id}",
                        "state": "input-required" if self.asks else "working",
                        "done_at": None if self.work is None else time.monotonic() + self.work,
                        "answer": {"answer": 42},
                    }
                task = self.task_json(task_id)
            return self.result(handler, rid, {"task": task} if self.protocol == V10 else task)
        task_id = params.get("id")
        if task_id not in self.tasks or (self.bad == "unknown-task" and method in ("GetTask", "tasks/get")):
            return self.error(handler, rid, -32001, "Task not found")
        if method in ("GetTask", "tasks/get"):
            if self.bad == "get-500":
                return self.send(handler, 500, {"error": "down"})
            with self.lock:
                return self.result(handler, rid, self.task_json(task_id))
        if method in ("CancelTask", "tasks/cancel"):
            with self.lock:
                self.tasks[task_id].update(state="canceled")
                return self.result(handler, rid, self.task_json(task_id))
        if method in ("SubscribeToTask", "tasks/resubscribe"):
            return self.stream(handler, rid, task_id)
        return self.error(handler, rid, -32601, "Method not found")

    def stream(self, handler, rid, task_id):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()

        def event(state):
            update = {"taskId": task_id, "contextId": self.tasks[task_id]["context"], "status": {"state": state}}
            result = {"statusUpdate": update} if self.protocol == V10 else {"kind": "status-update", **update}
            handler.wfile.write(f"data: {json.dumps({'jsonrpc': '2.0', 'id': rid, 'result': result})}\n\n".encode())
            handler.wfile.flush()

        if self.bad == "garbage-stream":
            handler.wfile.write(b"data: this is not json\n\n")
            return
        event(self.wire_state("working"))
        if self.bad == "drops-stream":
            return  # the connection closes: the stream ended before the task
        while True:
            with self.lock:
                state = self.state(task_id)
            if state != "working":
                return event(self.wire_state(state))
            time.sleep(0.02)

    @staticmethod
    def send(handler, status, body):
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
