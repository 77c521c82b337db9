"""`manage.py alembic`, migrations on start and the migration linter, on fresh databases of their own."""

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.support.server import ROOT

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
    database.alembic("upgrade", "runs.0001_runs_steps_logs")
    database.alembic("upgrade", "head")

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
        ("revision", "-m", "no app given"),
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
    # Writes into the repository: once, not per database backend (they may run in parallel).
    database = Database("sqlite", tmp_path)
    database.alembic("upgrade", "head")
    assert "No changes detected" in database.alembic("revision", "-m", "nothing new", "--autogenerate")
    folder = ROOT / "tests" / "fixtures" / "lint_good" / "migrations"
    before = set(folder.glob("*.py"))
    done = database.manage(
        "alembic",
        "revision",
        "-m",
        "Add the widget table",
        "--app",
        "lint_good",
        env={"DJANGO_SETTINGS_MODULE": "tests.fixtures.lint_settings"},
    )
    created = set(folder.glob("*.py")) - before
    try:
        assert done.returncode == 0, done.stderr
        assert [p.name for p in created] == ["0004_add_the_widget_table.py"]
    finally:
        for path in created:
            path.unlink()


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
