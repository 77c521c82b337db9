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
the target is met, and 1 if any request failed or the setup failed.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE_URL = "postgres://postgres@127.0.0.1:5432"
USERNAME = "bench"
NAME_TERM = "vision-lite"
CATEGORIES = ["billing", "search", "translate", "summarize", "ocr", "classify", "router", "scraper", "notify", "vision"]
VARIANTS = ["north", "south", "east", "west", "alpha", "beta", "gamma", "delta", "prime", "lite"]
TARGET_RATIO = 3.0


# --------------------------------------------------------------------------- seeding (subprocess)


def seed(count: int) -> None:
    """Runs in a subprocess whose environment already points DATABASE_URL at the bench database."""
    import random

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
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
        cursor.execute(f"VACUUM ANALYZE {table}")
    total = Agent.objects.count()
    active = Agent.objects.filter(status=AgentStatus.ACTIVE).count()
    matching = Agent.objects.filter(name__icontains=NAME_TERM).count()
    print(f"seeded {total} agents ({active} active, {total - active} inactive); {matching} match {NAME_TERM!r}")


# --------------------------------------------------------------------------- database and processes


def base_url() -> str:
    parts = urlsplit(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_BASE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def admin_connect():
    import psycopg

    parts = urlsplit(base_url())
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        dbname="postgres",
        autocommit=True,
    )


def recreate_database(name: str) -> None:
    from psycopg import sql

    with admin_connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    from psycopg import sql

    with admin_connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run(cmd: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SetupError(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


class SetupError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int, log_path: Path, workers: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}"]
    cmd += ["-w", str(workers), "--threads", "1", "--log-level", "warning"]
    log = log_path.open("w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_health(proc: subprocess.Popen, url: str, log_path: Path, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SetupError(f"/health did not answer 200 within {timeout:.0f}s:\n{log_path.read_text()}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- load generation


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    failures: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.failures.values())

    def percentile(self, pct: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)] * 1000

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else math.nan

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else math.nan


def _load_share(url: str, path: str, headers: dict[str, str], count: int) -> tuple[list, dict, float, float]:
    """One load process: `count` sequential GETs with the standard library's lean HTTP client."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    latencies, failures = [], {}
    first = last = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes on Linux
    for index in range(count):
        began = time.perf_counter()
        if index == 0:
            first = began
        try:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            outcome = response.status
            connection.close()
        except OSError as exc:
            outcome = type(exc).__name__
        last = time.perf_counter()
        if outcome == 200:
            latencies.append(last - began)
        else:
            failures[str(outcome)] = failures.get(str(outcome), 0) + 1
    return latencies, failures, first, last


def load(url: str, path: str, headers: dict[str, str], total: int, concurrency: int, name: str) -> Result:
    """Send `total` GETs to `path` from `concurrency` processes (not threads: the client must not
    queue on one GIL, or its own overhead would be measured as server latency)."""
    from concurrent.futures import ProcessPoolExecutor

    shares = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    result = Result(name)
    with ProcessPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(
            pool.map(_load_share, [url] * concurrency, [path] * concurrency, [headers] * concurrency, shares)
        )
    for latencies, failures, _, _ in outcomes:
        result.latencies.extend(latencies)
        for key, value in failures.items():
            result.failures[key] = result.failures.get(key, 0) + value
    result.elapsed = max(o[3] for o in outcomes) - min(o[2] for o in outcomes)
    return result


def check(url: str, path: str, headers: dict[str, str]) -> str:
    """One request before measuring, to fail fast with the body and to show what the scenario returns."""
    import httpx

    response = httpx.get(f"{url}{path}", headers=headers, timeout=30)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    body = response.json()
    if isinstance(body, dict) and "items" in body:
        return f"200, {len(body['items'])} items of total {body.get('total')}, page {body.get('page')}"
    return f"200, {response.text[:80]}"


# --------------------------------------------------------------------------- main


def report(results: list[Result]) -> None:
    print()
    header = f"{'scenario':<42} {'requests':>8} {'failed':>6} {'median ms':>10} {'p95 ms':>8} {'req/s':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        failed = sum(r.failures.values())
        print(f"{r.name:<42} {r.requests:>8} {failed:>6} {r.median:>10.2f} {r.percentile(95):>8.2f} {r.rps:>8.1f}")
    for r in results:
        if r.failures:
            print(f"  failures in {r.name}: {r.failures}")

    baseline = results[0].percentile(95)
    print()
    print(f"p95 relative to /health (target: within {TARGET_RATIO:g}x)")
    for r in results[1:]:
        ratio = r.percentile(95) / baseline if baseline else math.nan
        verdict = "meets target" if ratio <= TARGET_RATIO else "MISSES target"
        print(f"  {r.name:<42} {ratio:>6.2f}x  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests per scenario (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up requests per scenario (default 50)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="gunicorn sync workers (default: one per CPU; 2 x CPUs + 1 measured slower on a 2-core box)",
    )
    parser.add_argument("--agents", type=int, default=10_000, help="agents to load (default 10000)")
    parser.add_argument("--db-name", default="wfbench_agents", help="database to create (default wfbench_agents)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # internal: the loader subprocess
    args = parser.parse_args()

    if args.seed is not None:
        seed(args.seed)
        return 0
    if args.requests < 1 or args.concurrency < 1 or args.agents < 1 or args.warmup < 0:
        parser.error("--requests, --concurrency and --agents must be positive, --warmup not negative")

    database_url = f"{base_url()}/{args.db_name}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }
    deep_page = max(1, math.ceil(args.agents * 0.9 / 20))  # ~90% of the way through the list
    scenarios = [
        ("/health", "/health"),
        ("/api/v1/agents", "/api/v1/agents"),
        (f"/api/v1/agents?name={NAME_TERM}", f"/api/v1/agents?name={NAME_TERM}"),
        (f"/api/v1/agents?page={deep_page}&page_size=20", f"/api/v1/agents?page={deep_page}&page_size=20"),
    ]

    proc = None
    created = False
    api_key = None
    log_path = Path(tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")[1])
    try:
        print(f"database: {database_url} (recreated)")
        recreate_database(args.db_name)
        created = True
        manage = [sys.executable, "manage.py"]
        t0 = time.perf_counter()
        run([*manage, "migrate", "--noinput"], env, "migrate")
        print(f"migrated in {time.perf_counter() - t0:.1f}s")
        key_output = run([*manage, "create_api_key", USERNAME, "--role", "viewer", "--name", "bench"], env, "key")
        api_key = key_output.strip().splitlines()[-1].strip()
        t0 = time.perf_counter()
        print(run([sys.executable, str(Path(__file__).resolve()), "--seed", str(args.agents)], env, "seed").strip())
        print(f"loaded in {time.perf_counter() - t0:.1f}s")

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_gunicorn(env, port, log_path, args.workers)
        wait_for_health(proc, url, log_path)
        print(f"gunicorn up at {url} (-w {args.workers} --threads 1); log: {log_path}")
        print(f"load: {args.warmup} warm-up + {args.requests} measured requests each, {args.concurrency} threads")

        headers = {"X-API-Key": api_key, "Accept": "application/json"}
        results = []
        for name, path in scenarios:
            print(f"  check {name}: {check(url, path, headers)}")
            if args.warmup:
                load(url, path, headers, args.warmup, args.concurrency, name)
            results.append(load(url, path, headers, args.requests, args.concurrency, name))
        report(results)
        if proc.poll() is not None:
            print(f"gunicorn died during the run:\n{log_path.read_text()}")
            return 1
        server_log = log_path.read_text().strip()
        if server_log:
            print(f"\ngunicorn log:\n{server_log[-3000:]}")
        failed = sum(sum(r.failures.values()) for r in results)
        if failed:
            print(f"\n{failed} requests failed")
            return 1
        return 0
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop(proc)
        if created and not args.keep_db:
            drop_database(args.db_name)
            print(f"dropped database {args.db_name}")
        elif created:
            print(f"kept database: DATABASE_URL={database_url}; viewer key: {api_key}")
        if not args.keep_db:
            log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
