"""`core.db.rows_insert`: the engine's bulk inserts with SQL built once, as bulk_create would write them."""

import pytest
from django.db import connection

from core.db import INSERT_CHUNK, rows_insert
from core.models import OutboxMessage
from runs.models import RunLog
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents

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
