"""Schema versions in Alembic's terms, on top of Django migrations.

Django's migration graph is laid out in one deterministic order (the forward plan to every leaf, leaves
sorted). Revision k is the state after the first k migrations of that order; its id is a short hash
of the set of migrations applied, so the same state has the same id on every database, and `base`
is the empty state. The current id is kept in `alembic_version (version_num)`, as Alembic keeps it,
for tooling that reads that table. Every change of schema goes through `schema_lock` so that several
processes starting at once migrate once.

On start one role migrates: the web process (`migrate_on_start`, when MIGRATE_ON_START is on). Every other
process waits until the database has every migration its code knows (`schema_wait`), so none runs on
an older schema; a newer one is fine, migrations being expand / contract (docs/migrations.md).
"""

import contextlib
import fcntl
import hashlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

log = logging.getLogger(__name__)

BASE = "base"
LOCK_KEY = 0x5C4E3A  # the PostgreSQL advisory lock id of schema changes
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Revision:
    index: int  # how many migrations of the linear order are applied in this state
    id: str
    migration: tuple[str, str] | None  # the migration that leads to this state (None for base)
    down: str | None  # the previous revision's id


def revision_id(applied) -> str:
    if not applied:
        return BASE
    text = "\n".join(sorted(f"{app}.{name}" for app, name in applied))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


def linear_plan(loader: MigrationLoader | None = None) -> list[tuple[str, str]]:
    graph = (loader or MigrationLoader(connection, ignore_no_migrations=True)).graph
    plan: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for leaf in sorted(graph.leaf_nodes()):
        for node in graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                plan.append(node)
    return plan


def history(plan: list[tuple[str, str]]) -> list[Revision]:
    """Every revision from base to head, oldest first."""
    revisions = [Revision(0, BASE, None, None)]
    for index, migration in enumerate(plan, start=1):
        revisions.append(Revision(index, revision_id(plan[:index]), migration, revisions[-1].id))
    return revisions


def applied_migrations(loader: MigrationLoader) -> set[tuple[str, str]]:
    return {key for key in loader.applied_migrations if key in loader.graph.nodes}


@dataclass
class State:
    plan: list[tuple[str, str]]
    revisions: list[Revision]
    applied: set[tuple[str, str]]

    @property
    def current(self) -> Revision | None:
        """The revision the database is at, or None when its migrations are not a prefix of the order."""
        index = len(self.applied)
        if set(self.plan[:index]) == self.applied:
            return self.revisions[index]
        return None

    @property
    def current_id(self) -> str:
        return revision_id(self.applied)

    @property
    def head(self) -> Revision:
        return self.revisions[-1]


def state() -> State:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    plan = linear_plan(loader)
    return State(plan, history(plan), applied_migrations(loader))


def version_table_write() -> str:
    """Records the current revision in alembic_version (empty at base, as Alembic leaves it)."""
    current = state().current_id
    quoted = connection.ops.quote_name(VERSION_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted} (version_num VARCHAR(32) NOT NULL, "  # noqa: S608 - constant name
            f"CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        cursor.execute(f"DELETE FROM {quoted}")  # noqa: S608
        if current != BASE:
            cursor.execute(f"INSERT INTO {quoted} (version_num) VALUES (%s)", [current])  # noqa: S608
    return current


def version_table_read() -> str | None:
    quoted = connection.ops.quote_name(VERSION_TABLE)
    if VERSION_TABLE not in connection.introspection.table_names():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT version_num FROM {quoted}")  # noqa: S608
        row = cursor.fetchone()
    return row[0] if row else BASE


def migrate_to(index: int, *, fake: bool = False) -> list[tuple[str, str]]:
    """Applies or unapplies migrations until the state is revision `index`; returns what changed."""
    executor = MigrationExecutor(connection)
    plan = linear_plan(executor.loader)
    prefix = plan[:index]
    targets = dict.fromkeys(app for app, _ in plan)  # None: the app goes back to zero...
    for app, name in prefix:
        targets[app] = name  # ...unless the revision has some of its migrations
    migration_plan = executor.migration_plan(list(targets.items()))
    # What `manage.py migrate` does around the executor: the signals create content types,
    # permissions and our role groups.
    # Only after going forward: after a downgrade the tables those handlers write to may be gone.
    forward = any(not backwards for _, backwards in migration_plan)
    pre_state = executor._create_project_state(with_applied_migrations=True)
    if forward:
        emit_pre_migrate_signal(0, False, connection.alias, apps=pre_state.apps, plan=migration_plan)
    post_state = executor.migrate(list(targets.items()), plan=migration_plan, state=pre_state.clone(), fake=fake)
    post_state.clear_delayed_apps_cache()
    if forward:
        emit_post_migrate_signal(0, False, connection.alias, apps=post_state.apps, plan=migration_plan)
    version_table_write()
    return [(migration.app_label, migration.name) for migration, _ in migration_plan]


@contextlib.contextmanager
def schema_lock():
    """One schema change at a time across processes: an advisory lock on PostgreSQL, a file lock on SQLite."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return
    name = Path(str(connection.settings_dict["NAME"]))
    lock_path = name.with_name(name.name + ".migrate-lock")
    if not name.parent.is_dir():  # an in-memory database
        lock_path = Path(settings.DATA_DIR) / "migrate.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate_on_start(process: str) -> int | None:
    """Applies pending migrations before the web process serves (unless MIGRATE_ON_START is off).

    Returns how many migrations it applied (0 when another process had done it), or None when it did
    not look. A database that cannot be reached is logged, not raised: the process starts and its
    health checks say what is wrong."""
    if not settings.MIGRATE_ON_START:
        return None
    try:
        with schema_lock():
            current = state()
            if current.applied >= set(current.plan):
                if version_table_read() != current.current_id:
                    version_table_write()
                return 0
            applied = migrate_to(len(current.plan))
    except DatabaseError as exc:
        log.error("%s: could not apply migrations at start: %s", process, exc)
        return None
    log.warning("%s: applied %d migration(s) at start", process, len(applied))
    return len(applied)


def pending_migrations(plan: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The migrations of `plan` the database lacks (those it has beyond the plan do not count)."""
    recorder = MigrationRecorder(connection)
    applied = recorder.applied_migrations() if recorder.has_table() else {}
    return [migration for migration in plan if migration not in applied]


def schema_wait(process: str, *, poll_seconds: float = 1.0, log_seconds: float = 10.0) -> None:
    """Blocks until the database has every migration this code knows: the web process applies them, or
    `manage.py migrate` as a deploy step. What it waits for is logged every `log_seconds`; an unreachable
    database is waited for too. SIGTERM or SIGINT meanwhile ends the process cleanly (exit code 0)."""
    plan = linear_plan(MigrationLoader(None, ignore_no_migrations=True))  # from the files: no database yet
    received: list[int] = []  # a plain list, not an Event: a signal handler must take no lock
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, _frame: received.append(signum))
    started = time.monotonic()
    logged_at = None
    try:
        while True:
            try:
                pending = pending_migrations(plan)
                names = ", ".join(".".join(migration) for migration in pending[:3])
                names += ", ..." if len(pending) > 3 else ""
                waiting_for = f"{len(pending)} migration(s) to be applied ({names}) by the web process or `migrate`"
            except DatabaseError as exc:
                connection.close()  # a fresh connection on the next try
                pending, waiting_for = None, "the database: " + " ".join(str(exc).split())
            if pending == []:
                if logged_at is not None:
                    log.warning("%s: the schema is current after %.0f s", process, time.monotonic() - started)
                return
            if logged_at is None or time.monotonic() - logged_at >= log_seconds:
                log.warning("%s: waiting for %s", process, waiting_for)
                logged_at = time.monotonic()
            deadline = time.monotonic() + poll_seconds
            while not received and time.monotonic() < deadline:
                time.sleep(0.1)
            if received:
                log.warning("%s: stopped while waiting for the schema", process)
                raise SystemExit(0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
