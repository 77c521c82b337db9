"""Benchmark webhook delivery: status changes fanned out to several endpoints by a real Celery worker.

What it does (PostgreSQL on 127.0.0.1:5432 with trust auth, Redis on 127.0.0.1:6379)

    1. A fresh database (``bench_webhooks``, dropped afterwards unless ``--keep-db``), migrated.
    2. A local receiver in a process of its own: a threaded ``http.server`` with keep-alive that
       answers 200 and records when each request arrived, its headers and its body.
    3. A Celery worker (``celery -A config worker``, prefork, ``--worker-concurrency`` processes) and
       beat (the webhook sweep: retries) on the Redis database ``--celery-redis``, also the cache, so
       the "send requested" flag is shared as in production.
    4. ``--endpoints`` webhooks subscribed to ``*`` on the receiver, and a ping to each (the pipeline
       warms up and is checked end to end before measuring).
    5. ``--changes`` status changes, made the way the platform makes them: runs of a one-step workflow
       created with ``run_execute`` and driven by the executor's own handlers (execution request, then
       the agent's result), 5 changes per run: run.pending, run.running, step.running,
       step.completed, run.completed. Kafka is not involved: the executor's messages are handled
       in-process, as the executor tests do.
    6. (a) live: waits until every delivery has arrived, then prints deliveries per second (from the
       first event to the last arrival) and the latency from each event's ``created_at`` to its
       arrival at the receiver (median, p95, max; target p95 under 2 s). Here the rate is bounded by
       how fast this one process makes the changes.
       (b) backlog: the same changes again with the worker stopped (SIGSTOP), then resumed: the rate
       at which it works off 5,000 due deliveries, its top speed on this machine.
       Both check that nothing was lost or duplicated, that every signature verifies
       (``standardwebhooks``) and that each endpoint got each run's events in order. Exit code 1 when
       a check fails.

How to run (from the project root)::

    .venv/bin/python bench/webhooks.py [--changes 1000] [--endpoints 5] [--worker-concurrency 2]
                                       [--celery-redis redis://127.0.0.1:6379/15] [--keep-db]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    SetupError,
    base_url,
    drop_database,
    figure,
    free_port,
    main_with_figures,
    recreate_database,
    run,
    stop,
)

# What one run of the one-step workflow sends, in order.
RUN_EVENTS = ["run.pending", "run.running", "step.running", "step.completed", "run.completed"]
CHANGES_PER_RUN = len(RUN_EVENTS)


# --------------------------------------------------------------------------- the receiver (its own process)


def receive(port: int) -> None:
    """Serves until killed: POST records the request; GET /count and GET /dump report."""
    records: list[dict] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver behind a proxy would
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the body back
        # until the client's delayed ACK (40 ms per request).
        disable_nagle_algorithm = True

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            headers = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("webhook-")}
            with lock:
                records.append({"at": arrived, "path": self.path, "headers": headers, "body": body.decode()})
            self._answer(b"ok")

        def do_GET(self):
            with lock:
                payload = str(len(records)).encode() if self.path == "/count" else json.dumps(records).encode()
            self._answer(payload)

        def _answer(self, payload: bytes):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the worker opens dozens of connections at once; 5 would reset some

        def handle_error(self, request, client_address):
            pass  # a kept-alive connection the worker drops (at its exit) is no news

    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever(poll_interval=0.05)


# --------------------------------------------------------------------------- the benchmark


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]
    return (
        f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms (n={len(ordered)})"
    ), p95


def when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_for(check, timeout: float, what: str, worker: subprocess.Popen, worker_log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if worker.poll() is not None:
            raise SetupError(f"the Celery worker exited with {worker.returncode}:\n{worker_log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SetupError(
                f"timed out after {timeout:.0f}s waiting for {what}; worker log:\n{worker_log.read_text()[-3000:]}"
            )
        time.sleep(0.1)


def drive(workflow, changes: int) -> tuple[float, float]:
    """Makes `changes` status changes (whole runs of a one-step workflow); returns (start, end) times."""
    from django.conf import settings

    from core.models import OutboxMessage
    from runs.executor import Executor
    from runs.services import run_execute

    executor = Executor()

    def handle(topic: str, message: dict) -> list:
        return executor.handle(topic, json.dumps(message).encode())

    started = time.time()
    for _ in range(changes // CHANGES_PER_RUN):
        run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
        request = OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id)).latest("id")
        sent = handle(settings.KAFKA_EXECUTION_TOPIC, request.payload)
        [task] = [m.payload for m in sent if m.topic == settings.KAFKA_TASKS_TOPIC]
        result = {
            "run_id": task["run_id"],
            "task_id": task["task_id"],
            "correlation_id": task["correlation_id"],
            "status": "SUCCESS",
            "output_data": {"text": "X"},
            "error_message": None,
            "timestamp": "2026-11-26T00:00:00Z",
            "duration_ms": 1,
        }
        handle(settings.KAFKA_RESULTS_TOPIC, result)
    return started, time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000, help="status changes to make (default 1000)")
    parser.add_argument("--endpoints", type=int, default=5, help="webhooks, each subscribed to everything (default 5)")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--celery-redis", default="redis://127.0.0.1:6379/15", help="broker and cache")
    parser.add_argument("--db-name", default="bench_webhooks")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--receive", type=int, help=argparse.SUPPRESS)  # internal: be the receiver
    args = parser.parse_args()
    if args.receive:
        receive(args.receive)
        return 0

    database_url = f"{base_url()}/{args.db_name}"
    data_dir = tempfile.mkdtemp(prefix="bench-webhooks-")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.celery_redis,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),  # a Fernet key
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",  # the receiver is on 127.0.0.1
        "KAFKA_BOOTSTRAP_SERVERS": "",
        # Beat runs for the webhook sweep (retries); the outbox has no Kafka to go to here, and the runs
        # all finish: keep those two sweeps out of the figures.
        "OUTBOX_SWEEP_SECONDS": "3600",
        "RUN_RECOVERY_SECONDS": "3600",
        "DATA_DIR": data_dir,  # beat's schedule file
    }
    worker_log = Path(tempfile.mkstemp(prefix="bench-webhooks-worker-", suffix=".log")[1])
    receiver = worker = beat = None
    created = False
    try:
        recreate_database(args.db_name)
        created = True
        run([sys.executable, "manage.py", "migrate", "--noinput"], env, "migrate")
        print(f"database: {database_url} (recreated, migrated)")

        import redis

        redis.Redis.from_url(args.celery_redis).flushdb()
        port = free_port()
        receiver = subprocess.Popen([sys.executable, __file__, "--receive", str(port)], cwd=ROOT, env=env)
        receiver_url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING"]
        cmd += ["--concurrency", str(args.worker_concurrency), "--pool", "prefork", "--without-gossip"]
        worker = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=worker_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        beat_cmd = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING"]
        beat = subprocess.Popen(beat_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        print(f"receiver at {receiver_url}; worker (-c {args.worker_concurrency}) and beat on {args.celery_redis}")

        os.environ.update(env)  # this process makes the status changes: the same settings as the worker
        import django

        django.setup()
        import httpx
        from django.db.models import Count, Sum

        import core.outbox
        from tests.runs.helpers import workflow_with_agents
        from webhooks.models import Delivery
        from webhooks.services import webhook_create, webhook_test

        # There is no Kafka here: leave the runs' outbox rows unrelayed instead of having the worker
        # fail to send them (the executor's own messages are handled in-process below).
        core.outbox._notify_worker = lambda: None

        def count() -> int:
            return int(httpx.get(f"{receiver_url}/count", timeout=5).text)

        wait_for(lambda: _up(receiver_url), 10, "the receiver", worker, worker_log)
        hooks = [
            webhook_create(user=None, data={"url": f"{receiver_url}/e{index}", "event_types": ["*"]})
            for index in range(args.endpoints)
        ]
        for hook in hooks:
            webhook_test(endpoint=hook, user=None)
        wait_for(lambda: count() == len(hooks), 60, "the pings (is the worker up?)", worker, worker_log)
        print(f"{len(hooks)} webhooks, pinged through the worker")

        changes = args.changes - args.changes % CHANGES_PER_RUN
        expected = changes * len(hooks)
        workflow = workflow_with_agents("bench-agent", name="bench-webhooks")

        def dump() -> list[dict]:
            everything = httpx.get(f"{receiver_url}/dump", timeout=30).json()
            return [r for r in everything if '"type":"ping"' not in r["body"]]

        print("\n(a) live: the changes are made while the worker delivers")
        started, ended = drive(workflow, changes)
        print(f"made {changes} status changes in {ended - started:.1f}s ({changes / (ended - started):.0f}/s)")
        wait_for(lambda: count() >= len(hooks) + expected, 300, f"{expected} deliveries", worker, worker_log)
        time.sleep(1)  # anything more (a duplicate) would arrive now
        live = dump()
        failed = report(live, expected, hooks)

        print("\n(b) backlog: the same again with the worker stopped (SIGSTOP), then let go: its top speed")
        # (beat keeps running: its sweeps queue up as tasks, as they would while a worker is down)
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            drive(workflow, changes)
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        resumed = time.time()
        wait_for(lambda: count() >= len(hooks) + 2 * expected, 300, f"{expected} more deliveries", worker, worker_log)
        time.sleep(1)
        backlog = dump()[len(live) :]
        failed |= report(backlog, expected, hooks, since=resumed)
        statuses = dict(Delivery.objects.exclude(event_type="ping").values_list("status").annotate(n=Count("id")))
        attempts = Delivery.objects.exclude(event_type="ping").aggregate(n=Sum("attempt_count"))["n"]
        print(f"\ndelivery rows by status: {statuses}; attempts: {attempts}")
        return 1 if failed else 0
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop(beat)
        stop(worker)
        stop(receiver)
        if created and not args.keep_db:
            from django.apps import apps
            from django.db import connections

            if apps.ready:
                connections.close_all()  # ours, or the drop waits for them
            drop_database(args.db_name)
        worker_log.unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def _up(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/count", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def report(records: list[dict], expected: int, hooks, *, since: float | None = None) -> bool:
    """Prints the figures of one phase; True when a check failed. `since`: the backlog's release."""
    from standardwebhooks.webhooks import Webhook

    secrets_by_path = {f"/e{index}": hook.secret for index, hook in enumerate(hooks)}
    problems = []
    ids = [r["headers"]["webhook-id"] for r in records]
    if len(records) != expected or len(set(ids)) != expected:
        problems.append(f"received {len(records)} deliveries ({len(set(ids))} distinct), expected {expected}")
    bad = 0
    for record in records:
        try:
            Webhook(secrets_by_path[record["path"]]).verify(record["body"], record["headers"])
        except Exception:  # noqa: BLE001 - counted and reported
            bad += 1
    if bad:
        problems.append(f"{bad} signatures did not verify")
    bodies = [json.loads(r["body"]) for r in records]
    # Each endpoint must see each run's events in the order they happened (the order of their ids, which
    # is not always that of their timestamps: a step's event is built when its message's work is flushed).
    seen: dict[tuple[str, str], list[str]] = {}
    for record, body in sorted(zip(records, bodies, strict=True), key=lambda pair: pair[0]["at"]):
        seen.setdefault((record["path"], body["data"]["run_id"]), []).append(body["type"])
    out_of_order = sum(types != RUN_EVENTS for types in seen.values())
    if out_of_order:
        problems.append(f"{out_of_order} (endpoint, run) pairs got their events out of order")
    last_arrival = max(r["at"] for r in records)
    if since is None:
        first_event = min(when(b["timestamp"]) for b in bodies)
        elapsed = last_arrival - first_event
        print(f"deliveries: {len(records)} in {elapsed:.1f}s from the first event = {len(records) / elapsed:.0f}/s")
        text, p95 = ms([r["at"] - when(b["timestamp"]) for r, b in zip(records, bodies, strict=True)])
        print(f"event created -> received: {text}  (target p95 < 2000 ms: {'met' if p95 < 2 else 'NOT met'})")
        figure("webhooks: event created -> received, p95", "< 2000 ms", p95 * 1000, "ms")
    else:
        elapsed = last_arrival - since
        print(f"deliveries: {len(records)} in {elapsed:.1f}s after the worker resumed = {len(records) / elapsed:.0f}/s")
    print(f"signatures verified: {len(records) - bad}/{len(records)}; each run's order kept: {not out_of_order}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return bool(problems)


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
