"""An instant A2A agent for the engine benchmarks: echoes each message at once, spending as little CPU as
an HTTP server in Python can, so that what a benchmark measures on a shared machine is the engine.

The demo agent (`manage.py run_demo_agent`) is a2a-sdk's server: about 5 ms of CPU per call here, as
much as the executor's own work on a step, on the same two cores. This one is a bare ASGI app under
uvicorn (httptools, uvloop): about half a millisecond. It speaks what the bridge sends: JSON-RPC 2.0
`message/send` (A2A 0.3, the protocol its card names) and `SendMessage` (1.0), answered with a message
whose parts are the request's own (an echo), and a JSON-RPC error for any other method. Like the demo
agent it keeps a call log at `GET /calls` (skill, correlation id, time), so the benchmarks still check
that every step was called exactly once.

    python bench/instant_agent.py --port 8001    # any path is the agent; its card at <path>/.well-known/agent-card.json
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime

CALLS: list[dict] = []


def card(url: str) -> dict:
    return {
        "name": "Instant echo",
        "description": "Echoes its input at once (benchmarks).",
        "url": url,
        "version": "1.0.0",
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
        "capabilities": {"streaming": False},
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json", "text/plain"],
        "skills": [{"id": "echo", "name": "echo", "description": "Returns its input unchanged.", "tags": ["bench"]}],
    }


def answer(request: dict) -> dict:
    method, params = request.get("method"), request.get("params") or {}
    message = params.get("message") if isinstance(params, dict) else None
    if method not in ("message/send", "SendMessage") or not isinstance(message, dict):
        return {"code": -32601, "message": f"Method not found: {method}"}
    reply = {
        "messageId": str(uuid.uuid4()),
        "parts": message.get("parts") or [],
        "contextId": message.get("contextId") or str(uuid.uuid4()),
    }
    if method == "SendMessage":
        return {"result": {"message": {**reply, "role": "ROLE_AGENT"}}}
    return {"result": {**reply, "kind": "message", "role": "agent"}}


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            break
    path, status = scope["path"], 200
    if scope["method"] == "GET" and path.endswith(("/agent-card.json", "/agent.json")):
        host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode()
        payload = card(f"http://{host}{path.split('/.well-known/')[0]}")
    elif scope["method"] == "GET" and path == "/calls":
        payload = CALLS
    elif scope["method"] == "POST":
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            payload = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
        else:
            outcome = answer(request)
            payload = {
                "jsonrpc": "2.0",
                "id": request.get("id"),
                **(outcome if "result" in outcome else {"error": outcome}),
            }
            if "result" in outcome:
                correlation_id = dict(scope["headers"]).get(b"x-correlation-id", b"").decode() or None
                CALLS.append({"skill": "echo", "correlation_id": correlation_id, "at": datetime.now(UTC).isoformat()})
    else:
        status, payload = 404, {"detail": "Not found"}
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
