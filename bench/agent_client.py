"""The CPU the bridge's HTTP client spends per agent call: `agents.agent_http.AgentClient` (aiohttp) through
`agents.a2a.call_agent`, against httpx as the bridge used it before 2026-12-04 (a pool of 20 kept-alive
connections, TCP_NODELAY), both sending the same A2A 0.3 request to `bench/instant_agent.py` (started here,
in its own process, so its CPU is not counted) from `--concurrency` coroutines at once.

    .venv/bin/python bench/agent_client.py [--calls 3000] [--concurrency 50] [--rounds 3] [--json]

Prints, per client and round, the client process's CPU milliseconds per call and calls per second. No
target of its own: the figure explains the bridge's CPU per step in `bench/engine.py` (issue 18).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import figure, free_port, main_with_figures  # noqa: E402


def start_agent(port: int) -> subprocess.Popen:
    script = Path(__file__).resolve().parent / "instant_agent.py"
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the instant agent did not start")


async def aiohttp_round(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    from agents.a2a import AgentCall, call_agent
    from agents.agent_http import AgentClient

    call = AgentCall(url=url, headers={}, timeout_ms=30_000, protocol="0.3")
    async with AgentClient(max_connections=concurrency * 2) as client:

        async def one(i: int) -> None:
            result = await call_agent(client, call, {"n": i}, correlation_id=str(uuid.uuid4()), task_id=str(i))
            if not result.ok:
                raise SystemExit(result.error)

        return await _timed(one, calls, concurrency)


async def httpx_round(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    import httpx

    from agents.a2a import build_request, parse_response

    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=20)
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:

        async def one(i: int) -> None:
            body = build_request("0.3", {"n": i}, correlation_id=str(uuid.uuid4()), task_id=str(i))
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            async with client.stream("POST", url, json=body, headers=headers) as response:
                content = b"".join([chunk async for chunk in response.aiter_bytes()])
            outcome = parse_response(response.status_code, response.headers, content)
            if outcome.error:
                raise SystemExit(outcome.error)

        return await _timed(one, calls, concurrency)


async def _timed(one, calls: int, concurrency: int) -> tuple[float, float]:
    gate = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(bounded(i) for i in range(concurrency * 2)))  # connections opened, code warm
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(bounded(i) for i in range(calls)))
    return (time.process_time() - cpu) * 1000 / calls, calls / (time.monotonic() - wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    port = free_port()
    agent = start_agent(port)
    url = f"http://127.0.0.1:{port}/echo"
    figures: dict[str, list] = {"aiohttp": [], "httpx": []}
    try:
        for round_number in range(1, args.rounds + 1):
            for name, work in (("httpx", httpx_round), ("aiohttp", aiohttp_round)):
                cpu_ms, rate = asyncio.run(work(url, args.calls, args.concurrency))
                figures[name].append(cpu_ms)
                print(f"round {round_number} {name:8} {cpu_ms:6.3f} ms CPU per call, {rate:6.0f} calls/s")
    finally:
        agent.terminate()
        agent.wait(10)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"median CPU per call: httpx {medians['httpx']:.3f} ms, AgentClient (aiohttp) {medians['aiohttp']:.3f} ms")
    figure("agent call CPU, AgentClient (aiohttp)", "", medians["aiohttp"], "ms")
    figure("agent call CPU, httpx (before)", "", medians["httpx"], "ms")
    return 0


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
