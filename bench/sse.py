"""Benchmark live events: many idle Server-Sent Event streams on one web process.

What it does (PostgreSQL on 127.0.0.1:5432 with trust auth, as the other benches)

    1. A fresh database (``bench_sse``, dropped afterwards unless ``--keep-db``), migrated, a viewer API
       key, one workflow and run (the events' run).
    2. The web process as production starts it: ``bin/process web`` (uvicorn, config/asgi.py) with
       ``WEB_WORKERS=1``, so one process serves every stream.
    3. Memory (VmRSS), threads and the database sessions of the web process: idle, then with
       ``--streams`` (1,000) concurrent ``GET /api/v1/events`` streams open and idle.
    4. ``--events`` events committed one by one (``--gap`` s apart) straight into the events table (the
       table is the only source of the streams: how a row got there does not matter to them); each
       stream records when each event arrived. Latency = arrival - the writer's return from COMMIT,
       over every (stream, event): median, p95, max; target: p95 under 200 ms. Also checks that every
       stream got every event once, in order.

Client and server share the machine (2 cores here): the client's own parsing of 1,000 streams is part
of the figures, so they are an upper bound.

How to run (from the project root)::

    .venv/bin/python bench/sse.py [--streams 1000] [--events 20] [--gap 0.5] [--keep-db]

Exit code: 0 when every check passed (whatever the latency), 1 when a stream missed or repeated an
event or the setup failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    Bench,
    SetupError,
    add_database_arguments,
    figure,
    free_port,
    main_with_figures,
    stop,
    wait_for_health,
)

TARGET_MS = 200


def seed() -> None:
    """In the seeding subprocess: one workflow and one run; prints their ids."""
    from common import django_setup

    django_setup()
    from agents.models import Agent
    from runs.services import run_execute
    from workflows.services import workflow_create

    Agent.objects.create(name="sse-agent", url="http://127.0.0.1:1/")
    step = {"id": "s1", "agent_name": "sse-agent", "input_mapping": {}, "next_step": None}
    workflow = workflow_create(user=None, definition={"name": "sse", "start_step": "s1", "steps": {"s1": step}})
    run = run_execute(workflow=workflow, input_data={}, user=None)
    print(json.dumps({"run": str(run.id), "workflow": str(workflow.id)}))


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def process_figures(pid: int, database: str) -> str:
    status = proc_status(pid)
    from common import admin_connect

    with admin_connect() as conn:
        sessions = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        ).fetchone()[0]
    return f"RSS {status['VmRSS'].strip()}, threads {status['Threads'].strip()}, database sessions {sessions}"


async def stream(host: str, port: int, key: str, got: list, opened: list, ready: asyncio.Event, expected: int):
    """A bare HTTP/1.1 client (asyncio streams): a heavier one would measure itself on this 2-core box.
    Uvicorn sends the stream chunked, one chunk per message: the chunk-size lines never start with `id: `."""
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET /api/v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\nAccept: text/event-stream\r\n\r\n"
    )
    writer.write(request.encode())
    status = await reader.readline()
    if b" 200 " not in status:
        raise SetupError(f"stream: {status!r}")
    try:
        while line := await reader.readline():
            if line.startswith(b"id: "):
                got.append((int(line[4:]), time.monotonic()))
            elif line.startswith(b": stream open"):
                opened.append(1)
                if len(opened) >= expected:
                    ready.set()
    finally:
        writer.close()


def insert_event(conn, run_id: str, workflow_id: str) -> tuple[int, float]:
    row = conn.execute(
        "INSERT INTO runs_event (type, run_id, workflow_id, data, created_at) "
        "VALUES ('run.running', %s, %s, %s, now()) RETURNING id",
        [run_id, workflow_id, json.dumps({"run_id": run_id, "bench": True})],
    ).fetchone()[0]
    conn.commit()
    return row, time.monotonic()


async def measure(args, url: str, key: str, pid: int, db: dict, database_url: str) -> int:
    import psycopg

    arrivals: list[list] = [[] for _ in range(args.streams)]
    ready = asyncio.Event()
    opened: list[int] = []
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    tasks = [asyncio.create_task(stream(host, int(port), key, got, opened, ready, args.streams)) for got in arrivals]
    await asyncio.wait_for(ready.wait(), timeout=120)
    print(f"{args.streams} streams open in {time.monotonic() - started:.1f}s")
    await asyncio.sleep(3)  # idle: their requests' threads are gone, nothing runs but the poller
    print(f"web process, {args.streams} idle streams: {process_figures(pid, db['name'])}")
    committed = {}
    with psycopg.connect(database_url) as conn:
        for _ in range(args.events):
            event_id, at = await asyncio.to_thread(insert_event, conn, db["run"], db["workflow"])
            committed[event_id] = at
            await asyncio.sleep(args.gap)
    await asyncio.sleep(1)
    print(f"web process after the events: {process_figures(pid, db['name'])}")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies, broken = [], 0
    for got in arrivals:
        if [event_id for event_id, _ in got] != sorted(committed):
            broken += 1
        latencies += [(at - committed[event_id]) * 1000 for event_id, at in got if event_id in committed]
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    print(
        f"commit -> receive over {len(latencies)} deliveries ({args.events} events x {args.streams} streams): "
        f"min {latencies[0]:.1f} ms, median {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, "
        f"max {latencies[-1]:.1f} ms "
        f"(target p95 < {TARGET_MS} ms: {'met' if p95 < TARGET_MS else 'NOT met'})"
    )
    print(f"streams that missed, repeated or reordered an event: {broken}")
    figure("SSE: commit -> receive, p95", f"< {TARGET_MS} ms", p95, "ms", met=p95 < TARGET_MS and not broken)
    return 1 if broken else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two events")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    add_database_arguments(parser, db_name="bench_sse")
    args = parser.parse_args()
    if args.seed:
        seed()
        return 0
    with Bench(args.db_name, keep_db=args.keep_db, workers=1) as bench:
        try:
            bench.prepare_database()
            key = bench.create_api_key("bench", "viewer", "bench")
            seeded = subprocess.check_output([sys.executable, __file__, "--seed"], cwd=ROOT, env=bench.env, text=True)
            ids = json.loads(seeded.strip().splitlines()[-1])
            port = free_port()
            env = {
                **bench.env,
                "PORT": str(port),
                "WEB_WORKERS": "1",
                "MIGRATE_ON_START": "0",
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            }
            log = bench.log_path.open("w")
            bench.proc = subprocess.Popen(
                [str(ROOT / "bin" / "process"), "web"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
            url = f"http://127.0.0.1:{port}"
            wait_for_health(bench.proc, url, bench.log_path)
            print(f"bin/process web up at {url} (uvicorn, 1 process, pid {bench.proc.pid}); log: {bench.log_path}")
            time.sleep(1)
            print(f"web process, no stream: {process_figures(bench.proc.pid, args.db_name)}")
            db = {"name": args.db_name, **ids}
            return asyncio.run(measure(args, url, key, bench.proc.pid, db, bench.database_url))
        except SetupError as exc:
            print(f"setup failed: {exc}", file=sys.stderr)
            return 1
        finally:
            stop(bench.proc)
            bench.proc = None


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
