"""Benchmark the agent list API against a PostgreSQL database holding 10,000 agents.

What it measures
    Latency (median, p95) and throughput of four scenarios served by gunicorn
    (sync workers, ``--workers``, default one per CPU) over real HTTP, with a concurrent load generator:

    * ``/health``                                   baseline: no auth, no database
    * ``/api/v1/agents``                            first page (20 items, newest first)
    * ``/api/v1/agents?name=<term>``                case-insensitive substring matching ~1% of rows
    * ``/api/v1/agents?page=450&page_size=20``      a deep page (OFFSET 8980)

    Every response must be 200; failures are counted and reported. The target is that each list
    scenario's p95 stays within 3x of the ``/health`` p95.

What it does
    1. Creates a fresh PostgreSQL database (``wfbench_agents`` by default, dropped first if it exists),
       runs ``manage.py migrate``, creates a viewer API key with ``manage.py create_api_key`` and
       bulk-loads the agents through the Django ORM (80% active, 20% inactive; names are
       ``<category>-<variant>-<n>`` over 10 x 10 combinations, so ``vision-lite`` matches 1%).
    2. Starts gunicorn on a free port and waits for ``/health``.
    3. For each scenario: 50 warm-up requests, then ``--requests`` measured requests from
       ``--concurrency`` client processes (a new connection per request: gunicorn's sync workers
       close each one anyway).
    4. Prints the figures, the p95 ratios and whether the target is met.
    5. Stops gunicorn and drops the database (unless ``--keep-db``).

How to run (from the project root, PostgreSQL listening on 127.0.0.1:5432 with trust auth)::

    .venv/bin/python bench/agents_list.py [--requests 500] [--concurrency 4] [--workers N] [--agents 10000] [--keep-db]

Set ``BENCH_DATABASE_URL`` (e.g. ``postgres://postgres@127.0.0.1:5432``) to use another server; any
database name in it is ignored (``--db-name`` picks the database). The exit code is 0 whether or not
the target is met, and 1 if any request failed or the setup failed. The database, gunicorn and load
machinery lives in ``bench/common.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from common import (
    Bench,
    SetupError,
    add_database_arguments,
    add_load_arguments,
    django_setup,
    figure,
    main_with_figures,
    vacuum_analyze,
)

USERNAME = "bench"
NAME_TERM = "vision-lite"
CATEGORIES = ["billing", "search", "translate", "summarize", "ocr", "classify", "router", "scraper", "notify", "vision"]
VARIANTS = ["north", "south", "east", "west", "alpha", "beta", "gamma", "delta", "prime", "lite"]


# --------------------------------------------------------------------------- seeding (subprocess)


def seed(count: int) -> None:
    """Runs in a subprocess whose environment already points DATABASE_URL at the bench database."""
    import random

    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from agents.choices import AgentStatus, AuthType
    from agents.models import Agent

    rng = random.Random(42)
    user = get_user_model().objects.get(username=USERNAME)
    agents = []
    for i in range(count):
        category, variant = CATEGORIES[i % 10], VARIANTS[(i // 10) % 10]
        auth_type = (AuthType.NONE, AuthType.BEARER, AuthType.APIKEY)[i % 3]
        auth_config = {
            AuthType.NONE: {},
            AuthType.BEARER: {"token": f"tok-{i}"},
            AuthType.APIKEY: {"key": f"key-{i}", "header_name": "X-API-Key"},
        }[auth_type]
        agents.append(
            Agent(
                name=f"{category}-{variant}-{i:05d}",
                url=f"http://{category}-{i}.agents.internal:9000/",
                description=f"The {variant} {category} agent number {i}.",
                auth_type=auth_type,
                auth_config=auth_config,
                timeout_ms=rng.choice([5_000, 10_000, 30_000, 60_000]),
                status=AgentStatus.ACTIVE if rng.random() < 0.8 else AgentStatus.INACTIVE,
                created_by=user,
                updated_by=user,
            )
        )
    Agent.objects.bulk_create(agents, batch_size=1000)
    table = connection.ops.quote_name(Agent._meta.db_table)
    with connection.cursor() as cursor:
        # auto_now_add gives every row the same instant; spread them over a year like real data.
        cursor.execute(f"UPDATE {table} SET created_at = created_at - random() * interval '365 days'")
        cursor.execute(f"UPDATE {table} SET updated_at = created_at")
    # Autovacuum would tidy the two UPDATEs up within a minute; do it now so the figures are steady.
    vacuum_analyze(Agent)
    total = Agent.objects.count()
    active = Agent.objects.filter(status=AgentStatus.ACTIVE).count()
    matching = Agent.objects.filter(name__icontains=NAME_TERM).count()
    print(f"seeded {total} agents ({active} active, {total - active} inactive); {matching} match {NAME_TERM!r}")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser)
    parser.add_argument("--agents", type=int, default=10_000, help="agents to load (default 10000)")
    add_database_arguments(parser, db_name="wfbench_agents")
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # internal: the loader subprocess
    args = parser.parse_args()

    if args.seed is not None:
        seed(args.seed)
        return 0
    if args.requests < 1 or args.concurrency < 1 or args.agents < 1 or args.warmup < 0:
        parser.error("--requests, --concurrency and --agents must be positive, --warmup not negative")

    deep_page = max(1, math.ceil(args.agents * 0.9 / 20))  # ~90% of the way through the list
    scenarios = [
        ("/health", "/health"),
        ("/api/v1/agents", "/api/v1/agents"),
        (f"/api/v1/agents?name={NAME_TERM}", f"/api/v1/agents?name={NAME_TERM}"),
        (f"/api/v1/agents?page={deep_page}&page_size=20", f"/api/v1/agents?page={deep_page}&page_size=20"),
    ]

    with Bench(args.db_name, keep_db=args.keep_db, workers=args.workers) as bench:
        try:
            bench.prepare_database()
            api_key = bench.create_api_key(USERNAME, "viewer", "bench")
            bench.seed(Path(__file__).resolve(), "--seed", str(args.agents))
            bench.start_server()
            headers = {"X-API-Key": api_key, "Accept": "application/json"}
            results = bench.measure(
                scenarios, headers, requests=args.requests, warmup=args.warmup, concurrency=args.concurrency
            )
            # Issue 18: twice the throughput measured before it (2 workers, 8 connections).
            for result, before in zip(results[1:3], (350, 420), strict=True):
                figure(f"{result.name}: throughput, 2x of {before}", f">= {2 * before} req/s", result.rps, "req/s")
            return bench.finish(results)
        except SetupError as exc:
            print(f"setup failed: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
