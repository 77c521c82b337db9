"""Benchmark the cost of an `Idempotency-Key` on `POST /workflows/{id}/execute`.

What it does (PostgreSQL on 127.0.0.1:5432 with trust auth; only the web server runs: the runs
created wait in the outbox, which is what execute itself does)

    1. A fresh database (``bench_idempotency``, dropped afterwards unless ``--keep-db``), migrated,
       an operator API key, an agent and a one-step workflow.
    2. gunicorn (``--workers`` sync workers).
    3. Rounds of three scenarios, interleaved so that a slower minute of a shared machine hits them
       alike, each ``--requests`` requests from ``--concurrency`` client processes:
       - plain: execute without a key;
       - keyed: execute with a new key per request (the key's row, the advisory lock and the
         look-up are the overhead);
       - replay: the same key and body again (answered from the key's row; nothing is created).
    4. The table (median = p50, p95) and the keyed and replay figures against plain.

How to run (from the project root)::

    .venv/bin/python bench/idempotency.py [--requests 500] [--rounds 2] [--concurrency 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Bench,
    Result,
    SetupError,
    _request,
    add_database_arguments,
    add_load_arguments,
    django_setup,
    figure,
    main_with_figures,
)

WORKFLOW_NAME = "bench-idempotency"
BODY = json.dumps({"input_data": {"text": "hi"}}).encode()


def seed() -> None:
    django_setup()
    from agents.models import Agent
    from workflows.services import workflow_create

    Agent.objects.create(name="bench-echo", url="http://127.0.0.1:1/echo")  # never called: nothing executes
    step = {"id": "s1", "agent_name": "bench-echo", "input_mapping": {"text": "${workflow.input.text}"}}
    workflow = workflow_create(user=None, definition={"name": WORKFLOW_NAME, "start_step": "s1", "steps": {"s1": step}})
    print(f"workflow {workflow.id}")


def share(url: str, path: str, headers: dict, count: int, mode: str, tag: str) -> tuple[list, dict, float, float]:
    """One client process: `count` sequential POSTs; `mode` says which key each one carries."""
    latencies, failures = [], {}
    first = time.perf_counter()
    for index in range(count):
        sent = dict(headers)
        if mode == "keyed":
            sent["Idempotency-Key"] = f"{tag}-{index}-{uuid.uuid4()}"
        elif mode == "replay":
            sent["Idempotency-Key"] = f"{tag}-replay"
        began = time.perf_counter()
        status, _ = _request(url, "POST", path, sent, BODY)
        if status == 202:
            latencies.append(time.perf_counter() - began)
        else:
            failures[str(status)] = failures.get(str(status), 0) + 1
    return latencies, failures, first, time.perf_counter()


def load(url: str, path: str, headers: dict, total: int, concurrency: int, mode: str, result: Result) -> None:
    shares = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    tags = [f"{mode}-{uuid.uuid4()}" for _ in range(concurrency)]
    if mode == "replay":  # the key each process replays is used once first
        for tag in tags:
            _request(url, "POST", path, {**headers, "Idempotency-Key": f"{tag}-replay"}, BODY)
    with ProcessPoolExecutor(max_workers=concurrency) as pool:
        n = len(shares)
        outcomes = list(pool.map(share, [url] * n, [path] * n, [headers] * n, shares, [mode] * n, tags))
    for latencies, failures, _, _ in outcomes:
        result.latencies.extend(latencies)
        for key, value in failures.items():
            result.failures[key] = result.failures.get(key, 0) + value
    result.elapsed += max(o[3] for o in outcomes) - min(o[2] for o in outcomes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_arguments(parser, requests=500)
    add_database_arguments(parser, db_name="bench_idempotency")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the three scenarios (default 2)")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed()
        return 0
    with Bench(args.db_name, keep_db=args.keep_db, workers=args.workers) as bench:
        try:
            bench.prepare_database()
            key = bench.create_api_key("bench", "operator", "bench")
            bench.seed(Path(__file__), "--seed")
            url = bench.start_server()
        except SetupError as exc:
            print(f"setup failed: {exc}", file=sys.stderr)
            return 1
        import httpx

        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        found = httpx.get(f"{url}/api/v1/workflows?name={WORKFLOW_NAME}", headers=headers, timeout=30).json()
        path = f"/api/v1/workflows/{found['items'][0]['id']}/execute"
        modes = ("plain", "keyed", "replay")
        print(f"load: {args.rounds} rounds x {args.requests} requests per scenario, {args.concurrency} processes")
        for mode in modes:  # warm-up, unmeasured
            load(url, path, headers, args.warmup, args.concurrency, mode, Result(mode))
        results = {mode: Result(mode) for mode in modes}
        for _ in range(args.rounds):
            for mode in modes:
                load(url, path, headers, args.requests, args.concurrency, mode, results[mode])
        print(f"\n{'scenario':<10} {'requests':>8} {'failed':>6} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
        for r in results.values():
            failed = sum(r.failures.values())
            print(f"{r.name:<10} {r.requests:>8} {failed:>6} {r.median:>8.2f} {r.percentile(95):>8.2f} {r.rps:>8.1f}")
        plain = results["plain"]
        for mode in ("keyed", "replay"):
            r = results[mode]
            p50, p95 = r.median, r.percentile(95)
            print(
                f"{mode} vs plain: p50 {p50 - plain.median:+.2f} ms ({p50 / plain.median:.2f}x), "
                f"p95 {p95 - plain.percentile(95):+.2f} ms ({p95 / plain.percentile(95):.2f}x)"
            )
            figure(f"idempotency: execute {mode} vs plain, p50", "", p50 / plain.median, "x")
        failures = {mode: r.failures for mode, r in results.items() if r.failures}
        if failures:
            print(f"failures: {failures}")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
