"""Shared infrastructure of the HTTP benchmarks in this directory (agents_list.py, workflows_audit.py).

A benchmark script builds on these pieces:

* ``Bench``: one run against a fresh PostgreSQL database. It creates the database (dropped first if
  it exists) and migrates it, creates API keys with ``manage.py create_api_key``, seeds data by
  re-running the calling script in a subprocess (``bench.seed(script, "--seed", ...)``; that
  subprocess calls ``django_setup()`` and uses the ORM), starts gunicorn and waits for ``/health``,
  measures GET scenarios and reports them, and on exit stops gunicorn and drops the database
  (unless ``keep_db``). Use it as a context manager so the cleanup always runs.
* ``load`` / ``Result``: the load generator (client processes, one connection per request, the
  standard library's HTTP client) and its figures (median, nearest-rank p95, req/s).
* ``report``: the results table and each scenario's p95 ratio against the first (``/health``) one.
* ``add_load_arguments`` / ``add_database_arguments``: the command-line flags the scripts share.
* ``figure`` / ``main_with_figures``: the machine-readable figures (``--json``) that ``bench/run_all.py``
  reads: each bench records {measure, target, measured, met} where it prints a target.

PostgreSQL is expected on 127.0.0.1:5432 with trust auth; set ``BENCH_DATABASE_URL`` (e.g.
``postgres://postgres@127.0.0.1:5432``) to use another server; any database name in it is ignored.
"""

from __future__ import annotations

import argparse
import base64
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
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE_URL = "postgres://postgres@127.0.0.1:5432"
TARGET_RATIO = 3.0


class SetupError(Exception):
    pass


# --------------------------------------------------------------------------- command line


def add_load_arguments(parser: argparse.ArgumentParser, *, requests: int = 500) -> None:
    parser.add_argument(
        "--requests", type=int, default=requests, help=f"measured requests per scenario (default {requests})"
    )
    parser.add_argument("--warmup", type=int, default=50, help="warm-up requests per scenario (default 50)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="gunicorn sync workers (default: one per CPU; 2 x CPUs + 1 measured slower on a 2-core box)",
    )


def add_database_arguments(parser: argparse.ArgumentParser, *, db_name: str) -> None:
    parser.add_argument("--db-name", default=db_name, help=f"database to create (default {db_name})")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")


# --------------------------------------------------------------------------- Django (seeding subprocess)


def add_project_to_path() -> None:
    """Makes the project's packages importable (for pure code timed in the benchmark process itself)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def django_setup() -> None:
    """For code running inside the seeding subprocess, whose environment points DATABASE_URL at the bench database."""
    add_project_to_path()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def vacuum_analyze(*models) -> None:
    """VACUUM ANALYZE the models' tables (from the seeding subprocess), so plans and timings are steady."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def breakdown(paths: list[str], headers: dict[str, str], *, repeat: int = 30, explain: bool = True) -> None:
    """Where the time of a GET goes, in-process (Django's test client: no HTTP, no gunicorn).

    Runs in the seeding-style subprocess (call ``django_setup()`` first). For each path: the median
    time of the whole Django handling over `repeat` requests; the SQL of one request with each
    query's time as Django sees it (round trip included); Python time (the rest); two profiles of
    10 requests (top functions by own time, and the project's own functions by cumulative time);
    and EXPLAIN (ANALYZE, BUFFERS) of every SELECT.
    """
    import cProfile
    import io
    import pstats
    import re

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    def profile_lines(profiler: cProfile.Profile, sort: str, *restrictions) -> list[str]:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats(sort).print_stats(*restrictions)
        lines = [line for line in stream.getvalue().splitlines() if line.strip()]
        header = next((i for i, line in enumerate(lines) if "ncalls" in line), len(lines))
        return [f"    {line}" for line in lines[header:]]

    client = Client(headers=headers)
    for path in paths:
        for _ in range(5):
            response = client.get(path)
        if response.status_code != 200:
            print(f"\n=== {path}: HTTP {response.status_code}: {response.content[:300]!r}")
            continue
        timings = []
        for _ in range(repeat):
            began = time.perf_counter()
            client.get(path)
            timings.append(time.perf_counter() - began)

        durations: list[float] = []

        def timed(execute, sql, params, many, context, durations=durations):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                durations.append(time.perf_counter() - began)

        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timed):
            client.get(path)
        # Copied now: the next request's request_started signal empties connection.queries.
        queries = [query["sql"] for query in captured.captured_queries]
        sql_ms = sum(durations) * 1000
        total_ms = statistics.median(timings) * 1000
        print(f"\n=== {path}")
        print(f"in-process median {total_ms:.2f} ms over {repeat} requests; {len(queries)} queries")
        print(f"SQL {sql_ms:.2f} ms (one request, round trips included), Python ~{max(0.0, total_ms - sql_ms):.2f} ms")
        for number, (sql, seconds) in enumerate(zip(queries, durations, strict=False), 1):
            print(f"  [{number}] {seconds * 1000:6.2f} ms  {sql[:600]}")

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(10):
            client.get(path)
        profiler.disable()
        print("  profile of 10 requests, top functions by own time:")
        print("\n".join(profile_lines(profiler, "tottime", 12)))
        print("  profile of 10 requests, the project's functions by cumulative time:")
        print("\n".join(profile_lines(profiler, "cumulative", re.escape(str(ROOT)) + "/(?!\\.venv)", 15)))
        if explain:
            with connection.cursor() as cursor:
                for number, sql in enumerate(queries, 1):
                    if not sql.lstrip().upper().startswith("SELECT"):
                        continue
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                    print(f"  EXPLAIN ANALYZE [{number}]:")
                    print("\n".join(f"    {row[0]}" for row in cursor.fetchall()))


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


def build_env(database_url: str) -> dict[str, str]:
    """The environment of manage.py, the seeding subprocess and gunicorn: production settings, quiet logs."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        # A Fernet key; one given in the environment is kept, so that a --keep-db database stays readable.
        "FIELD_ENCRYPTION_KEY": os.environ.get("FIELD_ENCRYPTION_KEY")
        or base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }


def run(cmd: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SetupError(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


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


def _request(url: str, method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[object, bytes]:
    """One request on a new connection; (status, body) or (exception name, b"")."""
    import http.client

    parts = urlsplit(url)
    try:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        connection.close()
        return response.status, content
    except OSError as exc:
        return type(exc).__name__, b""


def _load_share(
    url: str,
    path: str,
    headers: dict[str, str],
    count: int,
    method: str = "GET",
    body: bytes | None = None,
    expect: int = 200,
) -> tuple[list, dict, float, float]:
    """One load process: `count` sequential requests with the standard library's lean HTTP client."""
    latencies, failures = [], {}
    first = last = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes on Linux
    for index in range(count):
        began = time.perf_counter()
        if index == 0:
            first = began
        outcome, _ = _request(url, method, path, headers, body)
        last = time.perf_counter()
        if outcome == expect:
            latencies.append(last - began)
        else:
            failures[str(outcome)] = failures.get(str(outcome), 0) + 1
    return latencies, failures, first, last


def load(
    url: str,
    path: str,
    headers: dict[str, str],
    total: int,
    concurrency: int,
    name: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    expect: int = 200,
) -> Result:
    """Send `total` requests to `path` from `concurrency` processes (not threads: the client must not
    queue on one GIL, or its own overhead would be measured as server latency)."""
    from concurrent.futures import ProcessPoolExecutor

    shares = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    result = Result(name)
    with ProcessPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(
            pool.map(
                _load_share,
                [url] * concurrency,
                [path] * concurrency,
                [headers] * concurrency,
                shares,
                [method] * concurrency,
                [body] * concurrency,
                [expect] * concurrency,
            )
        )
    for latencies, failures, _, _ in outcomes:
        result.latencies.extend(latencies)
        for key, value in failures.items():
            result.failures[key] = result.failures.get(key, 0) + value
    result.elapsed = max(o[3] for o in outcomes) - min(o[2] for o in outcomes)
    return result


def post_sequential(url: str, path: str, headers: dict[str, str], body: bytes, count: int, name: str) -> Result:
    """`count` POSTs of `body`, one after the other from this process (for a slow endpoint timed alone)."""
    result = Result(name)
    started = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter()
        outcome, _ = _request(url, "POST", path, {"Content-Type": "application/json", **headers}, body)
        if outcome == 200:
            result.latencies.append(time.perf_counter() - began)
        else:
            result.failures[str(outcome)] = result.failures.get(str(outcome), 0) + 1
    result.elapsed = time.perf_counter() - started
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


# --------------------------------------------------------------------------- reporting


def report(results: list[Result], target_ratio: float = TARGET_RATIO) -> None:
    """The table, then each scenario's p95 against the first scenario's (the /health baseline)."""
    width = max([42, *(len(r.name) for r in results)])
    print()
    header = f"{'scenario':<{width}} {'requests':>8} {'failed':>6} {'median ms':>10} {'p95 ms':>8} {'req/s':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        failed = sum(r.failures.values())
        print(f"{r.name:<{width}} {r.requests:>8} {failed:>6} {r.median:>10.2f} {r.percentile(95):>8.2f} {r.rps:>8.1f}")
    for r in results:
        if r.failures:
            print(f"  failures in {r.name}: {r.failures}")

    baseline = results[0].percentile(95)
    print()
    print(f"p95 relative to /health (target: within {target_ratio:g}x)")
    for r in results[1:]:
        ratio = r.percentile(95) / baseline if baseline else math.nan
        verdict = "meets target" if ratio <= target_ratio else "MISSES target"
        print(f"  {r.name:<{width}} {ratio:>6.2f}x  {verdict}")
        figure(f"{r.name}: p95 / /health p95", f"<= {target_ratio:g}x", ratio, "x")
        figure(f"{r.name}: throughput (p99 {r.percentile(99):.1f} ms)", "", r.rps, "req/s")


# --------------------------------------------------------------------------- one benchmark run


class Bench:
    """A fresh database, API keys, seeded data and a gunicorn server; cleaned up on exit.

    Typical use::

        with Bench(args.db_name, keep_db=args.keep_db, workers=args.workers) as bench:
            try:
                bench.prepare_database()
                key = bench.create_api_key("bench", "viewer", "bench")
                bench.seed(Path(__file__), "--seed", "1000")
                bench.start_server()
                results = bench.measure(scenarios, headers, requests=..., warmup=..., concurrency=...)
                return bench.finish(results)
            except SetupError as exc:
                print(f"setup failed: {exc}", file=sys.stderr)
                return 1
    """

    def __init__(self, db_name: str, *, keep_db: bool = False, workers: int = 1):
        self.db_name = db_name
        self.keep_db = keep_db
        self.workers = workers
        self.database_url = f"{base_url()}/{db_name}"
        self.env = build_env(self.database_url)
        self.log_path = Path(tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.created = False
        self.keys: dict[str, str] = {}  # "<role> key" -> raw key, for the --keep-db message

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def manage(self, *args: str, what: str) -> str:
        return run([sys.executable, "manage.py", *args], self.env, what)

    def prepare_database(self) -> None:
        print(f"database: {self.database_url} (recreated)")
        recreate_database(self.db_name)
        self.created = True
        started = time.perf_counter()
        self.manage("migrate", "--noinput", what="migrate")
        print(f"migrated in {time.perf_counter() - started:.1f}s")

    def create_api_key(self, username: str, role: str, name: str) -> str:
        output = self.manage("create_api_key", username, "--role", role, "--name", name, what="key")
        key = output.strip().splitlines()[-1].strip()
        self.keys[f"{role} key"] = key
        return key

    def seed(self, script: Path | str, *args: str) -> None:
        """Re-runs `script` with `args` in a subprocess (the seeding pattern) and prints what it printed."""
        started = time.perf_counter()
        print(run([sys.executable, str(script), *args], self.env, "seed").strip())
        print(f"loaded in {time.perf_counter() - started:.1f}s")

    def explain(self, script: Path | str, paths: list[str], headers: dict[str, str]) -> None:
        """Runs ``script --breakdown <paths>`` (which calls ``breakdown``) in a subprocess and prints its output.

        The headers go through the environment (BENCH_HEADERS, JSON) so API keys stay off the command line.
        """
        import json

        env = {**self.env, "BENCH_HEADERS": json.dumps(headers)}
        print(run([sys.executable, str(script), "--breakdown", *paths], env, "breakdown").rstrip())

    def start_server(self) -> str:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = start_gunicorn(self.env, port, self.log_path, self.workers)
        wait_for_health(self.proc, self.url, self.log_path)
        print(f"gunicorn up at {self.url} (-w {self.workers} --threads 1); log: {self.log_path}")
        return self.url

    def measure(
        self, scenarios: list[tuple[str, str]], headers: dict[str, str], *, requests: int, warmup: int, concurrency: int
    ) -> list[Result]:
        """Each (name, path): a check request, `warmup` unmeasured then `requests` measured GETs."""
        print(f"load: {warmup} warm-up + {requests} measured requests each, {concurrency} threads")
        results = []
        for name, path in scenarios:
            print(f"  check {name}: {check(self.url, path, headers)}")
            if warmup:
                load(self.url, path, headers, warmup, concurrency, name)
            results.append(load(self.url, path, headers, requests, concurrency, name))
        return results

    def finish(self, results: list[Result], target_ratio: float = TARGET_RATIO) -> int:
        """Reports; 1 if gunicorn died or any request failed, else 0 (whether or not targets are met)."""
        report(results, target_ratio)
        if self.proc is not None and self.proc.poll() is not None:
            print(f"gunicorn died during the run:\n{self.log_path.read_text()}")
            return 1
        server_log = self.log_path.read_text().strip()
        if server_log:
            print(f"\ngunicorn log:\n{server_log[-3000:]}")
        failed = sum(sum(r.failures.values()) for r in results)
        if failed:
            print(f"\n{failed} requests failed")
            return 1
        return 0

    def close(self) -> None:
        stop(self.proc)
        if self.created and not self.keep_db:
            drop_database(self.db_name)
            print(f"dropped database {self.db_name}")
        elif self.created:
            keys = "".join(f"; {label}: {key}" for label, key in self.keys.items())
            print(f"kept database: DATABASE_URL={self.database_url}{keys}")
        if not self.keep_db:
            self.log_path.unlink(missing_ok=True)


def ms(values) -> str:
    """Milliseconds as the engine benches print them: median, nearest-rank p95, max and count."""
    ordered = sorted(values)
    if not ordered:
        return "n/a"
    p95 = ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]
    return f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms (n={len(ordered)})"


def when(text: str) -> datetime:
    """An ISO 8601 timestamp of the API (with `Z`) as a datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- machine-readable figures

FIGURES: list[dict] = []


def target_met(target: str, value: float | None) -> bool | None:
    """Whether `value` meets a target written ``">= 300"`` or ``"<= 50 ms"`` (None: no such target)."""
    parts = target.split()
    if value is None or value != value or len(parts) < 2 or parts[0] not in ("<=", ">=", "<", ">"):
        return None
    limit = float(parts[1].rstrip("x"))
    return {"<=": value <= limit, ">=": value >= limit, "<": value < limit, ">": value > limit}[parts[0]]


def figure(measure: str, target: str, value: float | None, unit: str = "", *, met: bool | None = None) -> None:
    """Records one figure for ``--json``: what was measured, its target (``">= 300"``, ``"<= 10 ms"``
    or ``""``), the value and its unit; `met` is worked out from the target unless given (e.g. False
    when the runs behind a good figure did not all complete)."""
    value = None if value is None or value != value else round(float(value), 2)
    met = target_met(target, value) if met is None else met
    FIGURES.append({"measure": measure, "target": target, "measured": value, "unit": unit, "met": met})


def main_with_figures(main) -> int:
    """Runs a bench's main(); with ``--json`` (taken off the command line first) the last line of
    stdout is then the JSON list of its figures, for bench/run_all.py."""
    import json

    wanted = "--json" in sys.argv[1:]
    if wanted:
        sys.argv = [sys.argv[0], *(arg for arg in sys.argv[1:] if arg != "--json")]
    try:
        return main()
    finally:  # also after a failure: what was measured before it is kept
        if wanted:
            print(json.dumps(FIGURES), flush=True)
