"""`core.db.rows_insert`: the engine's bulk inserts with SQL built once, as bulk_create would write them;
`core.db.the_row_with`: a lookup joined to one relation, as select_related would read it."""

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.db import (
    INSERT_CHUNK,
    rows_insert,
    rows_insert_together,
    server_side_binding,
    the_row,
    the_row_with,
    the_rows,
)
from core.models import ApiKey, OutboxMessage
from core.roles import Role
from core.services import api_key_create
from runs.models import Event, RunLog
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.support.pipelines import pipelines_counted

pytestmark = pytest.mark.django_db


def test_rows_are_written_with_their_keys_defaults_and_json():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    logs = [RunLog(run=run, message=f"m{i}", source="executor", data={"i": i, "s": "é\\u0000"}) for i in range(3)]
    assert rows_insert(logs) is logs
    assert all(entry.pk and not entry._state.adding for entry in logs)
    stored = list(RunLog.objects.filter(pk__in=[entry.pk for entry in logs]).order_by("pk"))
    assert [(e.message, e.data, e.level, e.timestamp) for e in stored] == [
        (e.message, e.data, e.level, e.timestamp) for e in logs
    ]
    message = OutboxMessage(topic="t", key="k", payload={"a": [1, None]}, next_attempt_at=logs[0].timestamp)
    rows_insert([message])
    again = OutboxMessage.objects.get(pk=message.pk)
    assert again.payload == {"a": [1, None]} and again.created_at == message.created_at  # auto_now_add set
    assert rows_insert([]) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="elsewhere it is bulk_create")
def test_more_rows_than_one_statement_takes_go_in_chunks():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    before = RunLog.objects.filter(run=run).count()
    logs = [RunLog(run=run, message=str(i), source="executor") for i in range(INSERT_CHUNK + 5)]
    rows_insert(logs)
    assert len({entry.pk for entry in logs}) == len(logs)
    assert RunLog.objects.filter(run=run).count() == before + len(logs)
    assert RunLog.objects.get(pk=logs[-1].pk).message == str(INSERT_CHUNK + 4)


def test_rows_of_several_models_go_together_in_one_round_trip_each_with_its_keys():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    logs = [RunLog(run=run, message=f"m{i}", source="executor", data={"i": i}) for i in range(INSERT_CHUNK + 2)]
    events = [Event(type="step.running", run_id=run.id, workflow_id=run.workflow_id, data={"n": 1})]
    message = OutboxMessage(topic="t", key="k", payload={"a": "%s;'"}, next_attempt_at=logs[0].timestamp)
    with CaptureQueriesContext(connection) as queries, pipelines_counted() as pipelines:
        rows_insert_together(logs, [], events, [message])
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    if server_side_binding(connection):  # a statement per chunk, all in one pipeline: one round trip
        assert len(inserts) == 4 and pipelines == [1]
    elif connection.vendor == "postgresql":  # one query string; elsewhere bulk_create, per model and batch
        assert len(inserts) == 1
    assert len({entry.pk for entry in logs}) == len(logs) and all(not e._state.adding for e in logs)
    assert RunLog.objects.get(pk=logs[-1].pk).message == f"m{INSERT_CHUNK + 1}"
    assert Event.objects.get(pk=events[0].pk).data == {"n": 1}
    assert OutboxMessage.objects.get(pk=message.pk).payload == {"a": "%s;'"}  # quoting survives the batch
    rows_insert_together([], [])  # nothing to insert: no query


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the binding is PostgreSQL's")
@pytest.mark.parametrize("server_side", [True, False])
def test_either_binding_sends_the_rows_and_reads_in_one_round_trip(server_side):
    from django.db.backends.postgresql.base import Cursor, ServerBindingCursor

    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    connection.ensure_connection()
    raw = connection.connection
    factory, raw.cursor_factory = raw.cursor_factory, ServerBindingCursor if server_side else Cursor
    try:
        logs = [RunLog(run=run, message="a", source="executor"), RunLog(run=run, message="b", source="api")]
        events = [Event(type="step.running", run_id=run.id, workflow_id=run.workflow_id, data={})]
        with CaptureQueriesContext(connection) as queries, pipelines_counted() as pipelines:
            rows_insert_together(logs, events)
        with CaptureQueriesContext(connection) as reads, pipelines_counted() as read_pipelines:
            found = the_rows(
                (RunLog, '"id" = %s', [logs[0].pk], (), "LIMIT 1"), (Event, '"id" = %s', [events[0].pk], (), "LIMIT 1")
            )
    finally:
        raw.cursor_factory = factory
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    # Server-side: one statement each, pipelined; client-side: one query string holding both.
    assert (len(inserts), pipelines, len(reads.captured_queries), read_pipelines) == (
        (2, [1], 2, [1]) if server_side else (1, [], 1, [])
    )
    assert [row.pk for row in found] == [logs[0].pk, events[0].pk]
    assert [RunLog.objects.get(pk=e.pk).message for e in logs] == ["a", "b"] and Event.objects.get(pk=events[0].pk)


def test_the_row_with_its_relation_reads_what_select_related_reads():
    user = get_user_model().objects.create_user("reader", email="r@example.com", last_name="Lé")
    key, _ = api_key_create(user=user, role=Role.VIEWER, name="k")
    found = the_row_with(ApiKey, "user", 'a."prefix" = %s', [key.prefix])
    expected = ApiKey.objects.select_related("user").get(prefix=key.prefix)
    assert not found._state.adding and found._state.db == "default"
    assert [getattr(found, f.attname) for f in ApiKey._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in ApiKey._meta.concrete_fields
    ]
    fields = get_user_model()._meta.concrete_fields
    assert [getattr(found.user, f.attname) for f in fields] == [getattr(expected.user, f.attname) for f in fields]
    assert found.user.is_active is True and found.created_at.tzinfo is not None
    assert the_row_with(ApiKey, "user", 'a."prefix" = %s', ["nothere"]) is None
    assert the_row_with(ApiKey, "user", 'a."id" = %s', [key.pk]).pk == key.pk  # a UUID parameter


@pytest.mark.skipif(connection.vendor != "postgresql", reason="sessions are PostgreSQL's to count")
@pytest.mark.django_db(transaction=True)
def test_threads_end_closes_each_threads_connection():
    from concurrent.futures import ThreadPoolExecutor

    from core.db import threads_end

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = sessions()
    pool = ThreadPoolExecutor(3)
    barrier = threading.Barrier(3)

    def use():
        barrier.wait(10)  # three threads, each with its own connection
        return ApiKey.objects.count()

    assert [f.result() for f in [pool.submit(use) for _ in range(3)]] == [0, 0, 0]
    assert sessions() == before + 3
    threads_end(pool)
    deadline = time.monotonic() + 10  # a closed session leaves pg_stat_activity a moment later
    while sessions() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions() == before
    threads_end(pool)  # a second time: nothing to do


def test_the_rows_of_several_lookups_are_what_the_row_reads_in_one_round_trip():
    from runs.models import Run, StepExecution
    from tests.runs.test_executor import start

    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    start(run)
    step = StepExecution.objects.get(run=run)
    lookups = [
        (
            Run,
            '"id" = %s',
            [run.pk],
            ("input_data", "output_data"),
            "FOR UPDATE" if connection.vendor == "postgresql" else "",
        ),
        (StepExecution, '"run_id" = %s AND "correlation_id" = %s', [run.pk, step.correlation_id], (), "LIMIT 1"),
        (StepExecution, '"correlation_id" = %s', ["no such id"], (), "LIMIT 1"),
    ]
    with CaptureQueriesContext(connection) as queries, pipelines_counted() as pipelines:
        found = the_rows(*lookups)
    if server_side_binding(connection):
        assert len(queries.captured_queries) == 3 and pipelines == [1]
    elif connection.vendor == "postgresql":
        assert len(queries.captured_queries) == 1
    expected = [the_row(model, where, params, omit=omit, tail=tail) for model, where, params, omit, tail in lookups]
    assert found[2] is None and expected[2] is None
    for got, want in zip(found[:2], expected[:2], strict=True):
        assert type(got) is type(want) and got.get_deferred_fields() == want.get_deferred_fields()
        assert not got._state.adding and got._state.db == "default"
        fields = [f.attname for f in type(got)._meta.concrete_fields if f.attname not in got.get_deferred_fields()]
        assert [getattr(got, name) for name in fields] == [getattr(want, name) for name in fields]
    assert found[0].get_deferred_fields() == {"input_data", "output_data"}
    assert found[1].input_data == {"text": "x"} and found[1].started_at.tzinfo is not None


def test_row_update_writes_what_save_with_update_fields_writes_and_fails_without_a_row():
    from django.db import DatabaseError

    from core.db import row_update
    from runs.models import StepExecution
    from tests.runs.test_executor import start

    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    start(run)
    step = StepExecution.objects.get(run=run)
    step.status, step.output_data, step.error_message = "COMPLETED", {"t": "é\\u0000", "n": [1, None]}, ""
    step.duration_ms, step.task_id = 12, "not saved"  # a field outside the list stays as stored
    row_update(step, ["status", "output_data", "error_message", "duration_ms"])
    stored = StepExecution.objects.get(pk=step.pk)
    assert (stored.status, stored.output_data, stored.duration_ms) == ("COMPLETED", step.output_data, 12)
    assert stored.task_id != "not saved"
    StepExecution.objects.filter(pk=step.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        row_update(step, ["status"])


def test_row_save_writes_every_loaded_field_leaves_deferred_ones_and_saves_a_new_row():
    from core.db import row_save
    from runs.models import RUN_LARGE_FIELDS, Run

    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    loaded = Run.objects.defer(*RUN_LARGE_FIELDS).get(pk=run.pk)
    before = loaded.updated_at
    loaded.status, loaded.error_message, loaded.recoveries = "RUNNING", "kept", 3
    with CaptureQueriesContext(connection) as queries:
        row_save(loaded)
    assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE")
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.error_message, stored.recoveries) == ("RUNNING", "kept", 3)
    assert stored.input_data == {"text": "x"} and stored.updated_at > before  # deferred: untouched; auto_now set
    Run.objects.filter(pk=run.pk).update(input_data={"text": "changed elsewhere"})
    loaded.output_data = {"out": 1}  # assigned: loaded now, so written
    row_save(loaded)
    stored = Run.objects.get(pk=run.pk)
    assert stored.output_data == {"out": 1} and stored.input_data == {"text": "changed elsewhere"}
    fresh = Run(workflow=run.workflow, workflow_name="w", workflow_version=1, plan=run.plan, input_data={})
    row_save(fresh)
    assert Run.objects.filter(pk=fresh.pk).exists()
