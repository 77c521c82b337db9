"""`manage.py alembic`, migrations on start and the migration linter, on fresh databases of their own."""

import io
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.core.management import CommandError, call_command

from tests.support.server import ROOT
from tests.support.system import wait_for

pytestmark = pytest.mark.slow
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else [])


class Database:
    def __init__(self, backend: str, tmp: Path):
        self.backend = backend
        if backend == "sqlite":
            self.path = tmp / "schema.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            parts = urlsplit(os.environ["DATABASE_URL"])
            self.name = f"wf_schema_{uuid.uuid4().hex[:10]}"
            self.admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
            self.url = urlunsplit((parts.scheme, parts.netloc, f"/{self.name}", "", ""))
            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
        self.env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "DATA_DIR": str(tmp),
            "SECRET_KEY": "schema-tests",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }

    def drop(self):
        if self.backend == "postgres":
            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def query(self, sql: str) -> list[tuple]:
        if self.backend == "sqlite":
            with sqlite3.connect(self.path) as conn:
                return conn.execute(sql).fetchall()
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchall()

    def manage(self, *args: str, env=None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def alembic(self, *args: str, ok: bool = True) -> str:
        done = self.manage("alembic", *args)
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout + done.stderr if not ok else done.stdout

    def version(self) -> list[str]:
        return [row[0] for row in self.query("SELECT version_num FROM alembic_version")]

    def current(self) -> str:
        return self.alembic("current").split(",")[0].split()[0]


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path):
    db = Database(request.param, tmp_path)
    yield db
    db.drop()


def test_every_verb(database):
    head = database.alembic("heads").split()[0]
    assert re.fullmatch(r"[0-9a-f]{12}", head)
    assert database.current() == "base"

    assert "Applied 2 migration(s)" in database.alembic("upgrade", "+2")
    history = database.alembic("history").splitlines()
    second = history[-2].split(" -> ")[1].split()[0].rstrip(",")
    assert database.current() == second and database.version() == [second]

    database.alembic("upgrade", "head")
    history = database.alembic("history").splitlines()
    assert history[0].startswith(f"{history[1].split(' -> ')[1].split(',')[0]} -> {head} (head, current), ")
    assert len(history) == len(database.query("SELECT * FROM django_migrations"))
    assert database.current() == head and database.version() == [head]

    previous = history[0].split(" -> ")[0]
    assert "Unapplied 1 migration(s)" in database.alembic("downgrade", "-1")
    assert database.current() == previous and database.version() == [previous]
    database.alembic("upgrade", "+1")
    assert database.current() == head

    # a revision by id prefix and by migration name
    database.alembic("downgrade", previous[:6])
    assert database.current() == previous
    newest = history[0].rsplit(", ", 1)[1]  # the migration that leads to head, as app.name
    database.alembic("upgrade", newest)
    assert database.current() == head

    database.alembic("stamp", "base")
    assert database.version() == [] and database.query("SELECT COUNT(*) FROM django_migrations")[0][0] == 0
    assert database.query("SELECT COUNT(*) FROM runs_run")[0][0] == 0  # the tables stayed: stamp runs nothing
    database.alembic("stamp", "head")
    assert database.current() == head and database.version() == [head]


def test_down_to_zero_and_back_up(database):
    database.alembic("upgrade", "head")
    head = database.current()
    database.alembic("downgrade", "base")
    assert database.current() == "base" and database.version() == []
    tables = {"runs_run", "agents_agent", "workflows_workflow", "core_outboxmessage", "auth_user"}
    existing = _tables(database)
    assert not (tables & existing), tables & existing
    database.alembic("upgrade", "head")
    assert database.current() == head and tables <= _tables(database)
    # the groups the migrations create are back too
    assert database.query("SELECT COUNT(*) FROM auth_group")[0][0] == 4


def _tables(database) -> set[str]:
    if database.backend == "sqlite":
        return {r[0] for r in database.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {r[0] for r in database.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


@pytest.mark.parametrize(
    "args",
    [
        ("upgrade", "nope"),
        ("upgrade", "ffffffffffff"),
        ("downgrade", "-999"),
        ("downgrade", "+1"),
        ("upgrade", "-1"),
        ("upgrade",),
        (),
        ("sideways",),
        ("revision", "-m", "unknown app", "--app", "nope"),
        ("revision", "-m", "!!!", "--app", "core"),
    ],
    ids=lambda args: " ".join(args) or "no verb",
)
def test_bad_input_exits_2_and_changes_nothing(database, args):
    database.alembic("upgrade", "+3")
    before = database.current()
    done = database.manage("alembic", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert (done.stderr or done.stdout).strip()
    assert database.current() == before


def test_revision_creates_a_named_migration(tmp_path):
    # Writes into the repository: once, not per backend, and both cases in one test, one after the
    # other, so parallel test workers never write into the same folder at once.
    database = Database("sqlite", tmp_path)
    database.alembic("upgrade", "head")
    assert "No changes detected" in database.alembic("revision", "-m", "nothing new", "--autogenerate")
    folder = ROOT / "tests" / "fixtures" / "lint_good" / "migrations"
    fixture_settings = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.lint_settings"}
    cases = [
        (["--app", "lint_good"], "Add the widget table", fixture_settings, "0004_add_the_widget_table.py"),
        # Without --app: ALEMBIC_DEFAULT_APP, read from the environment.
        (
            [],
            "Add the gadget table",
            {**fixture_settings, "ALEMBIC_DEFAULT_APP": "lint_good"},
            "0004_add_the_gadget_table.py",
        ),
    ]
    for args, message, env, expected in cases:
        before = set(folder.glob("*.py"))
        done = database.manage("alembic", "revision", "-m", message, *args, env=env)
        created = set(folder.glob("*.py")) - before
        try:
            assert done.returncode == 0, done.stderr
            assert [p.name for p in created] == [expected]
        finally:
            for path in created:
                path.unlink()


@pytest.mark.django_db
def test_revision_without_app_goes_to_alembic_default_app(settings, tmp_path, monkeypatch):
    # core's migrations, copied into a package of the test's own: the new file lands there, not in the repo.
    package = f"default_app_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / package / "migrations"
    shutil.copytree(ROOT / "core" / "migrations", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"core": f"{package}.migrations"}
    assert settings.ALEMBIC_DEFAULT_APP == "core"
    before = {path.name for path in (ROOT / "core" / "migrations").glob("*.py")}

    copied = {path.name for path in folder.glob("*.py")}
    call_command("alembic", "revision", "-m", "Note for operators", stdout=io.StringIO())

    [created] = {path.name for path in folder.glob("*.py")} - copied
    assert re.fullmatch(r"\d{4}_note_for_operators\.py", created), created
    assert {path.name for path in (ROOT / "core" / "migrations").glob("*.py")} == before

    settings.ALEMBIC_DEFAULT_APP = ""  # no default: --app is needed again
    with pytest.raises(CommandError, match="needs --app or ALEMBIC_DEFAULT_APP") as raised:
        call_command("alembic", "revision", "-m", "Another note")
    assert raised.value.returncode == 2


def test_migrate_records_the_revision_too(database):
    assert database.manage("migrate", "--noinput").returncode == 0
    assert database.version() == [database.current()] and "(head)" in database.alembic("current")


def test_processes_starting_together_migrate_once(database):
    script = "from core.schema import migrate_on_start; print('APPLIED', migrate_on_start('test'))"
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", script],
            cwd=ROOT,
            env=database.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    counts = sorted(int(re.search(r"APPLIED (\d+)", out).group(1)) for out, _ in outputs)
    assert counts[0] == 0 and counts[1] > 20, outputs
    assert "(head)" in database.alembic("current")
    assert database.version() == [database.current()]


def test_migrate_on_start_can_be_turned_off(database):
    script = "from core.schema import migrate_on_start; print('APPLIED', migrate_on_start('test'))"
    done = database.manage("shell", "-c", script, env={"MIGRATE_ON_START": "0"})
    assert "APPLIED None" in done.stdout
    assert database.current() == "base"


def test_the_linter_catches_incompatible_migrations(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.fixtures.lint_settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'lint.sqlite3'}",
    }

    def lint(app):
        return subprocess.run(
            [sys.executable, "manage.py", "lint_migrations", "--apps", app],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    bad = lint("lint_bad")
    assert bad.returncode == 1
    assert "DROPPING columns" in bad.stdout and "NOT NULL constraint on columns" in bad.stdout
    assert "contract_of" in bad.stderr
    good = lint("lint_good")  # the same drop, marked as the contract step of an expand step
    assert good.returncode == 0, good.stdout + good.stderr


WAIT_ARGS = "poll_seconds=0.2, log_seconds=0.5"


class Waiter:
    """`schema_wait` in a process of its own (as the executor, the bridge and Celery call it), its log in a file."""

    def __init__(self, database, tmp: Path):
        script = f"from core.schema import schema_wait; schema_wait('test', {WAIT_ARGS}); print('READY')"
        self.log = tmp / f"waiter-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "manage.py", "shell", "-c", script],
                cwd=ROOT,
                env=database.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text()

    def waits(self) -> int:
        return self.output().count("test: waiting for")

    def finish(self, timeout: float = 60) -> int:
        try:
            return self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()


def test_other_processes_wait_until_the_schema_is_current(database, tmp_path):
    waiter = Waiter(database, tmp_path)
    try:
        wait_for(lambda: waiter.waits() >= 2, timeout=60, what="the waiter to log twice")  # every log_seconds
        assert re.search(r"waiting for \d+ migration\(s\) to be applied \(\w+\.0001_\w+", waiter.output())
        assert waiter.popen.poll() is None and database.current() == "base"  # waiting applies nothing
        database.alembic("upgrade", "head")
    finally:
        returncode = waiter.finish()
    assert returncode == 0, waiter.output()
    assert "the schema is current" in waiter.output() and "READY" in waiter.output()


def test_a_database_ahead_of_the_code_is_fine(database, tmp_path):
    database.alembic("upgrade", "head")
    now = "2030-01-01 00:00:00"
    # A migration of a newer release, which this code does not know.
    _execute(database, f"INSERT INTO django_migrations (app, name, applied) VALUES ('core', '9999_newer', '{now}')")
    waiter = Waiter(database, tmp_path)
    assert waiter.finish() == 0, waiter.output()
    assert "READY" in waiter.output() and waiter.waits() == 0


def test_sigterm_stops_a_waiting_process_cleanly(database, tmp_path):
    database.alembic("upgrade", "head")
    database.alembic("downgrade", "-1")
    waiter = Waiter(database, tmp_path)
    try:
        wait_for(lambda: "waiting for 1 migration(s)" in waiter.output(), timeout=60, what="the waiter")
        started = time.monotonic()
        waiter.popen.send_signal(signal.SIGTERM)
    finally:
        returncode = waiter.finish(timeout=15)
    assert returncode == 0, waiter.output()
    assert time.monotonic() - started < 5
    assert "stopped while waiting for the schema" in waiter.output() and "READY" not in waiter.output()


def _execute(database, sql: str) -> None:
    if database.backend == "sqlite":
        with sqlite3.connect(database.path) as conn:
            conn.execute(sql)
        return
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(sql)
