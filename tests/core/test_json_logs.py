"""LOG_FORMAT=json: one JSON object per line, with the request, run and step ids when they are known."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from core.logs import JsonFormatter, LogContextFilter, log_context
from core.middleware import RequestIdLogFilter
from runs.executor import Executor
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = (
    "import logging; from core.logs import log_context; log = logging.getLogger('wf.test'); "
    "log.warning('outside'); "
    'exec(\'with log_context(run_id="r-1", step_id="s-1"):\\n    log.warning("inside %s", 42)\')'
)


def shell(tmp_path, *command, **env) -> subprocess.CompletedProcess:
    """The snippet in `manage.py shell` with the real settings (and their LOGGING) in a fresh process."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "DJANGO_"))}
    keep |= {"DJANGO_SETTINGS_MODULE": "config.settings", "DATA_DIR": str(tmp_path), "MIGRATE_ON_START": "0"}
    command = [sys.executable, *(command or ("manage.py", "shell", "-c", SNIPPET))]
    return subprocess.run(command, cwd=ROOT, env={**keep, **env}, capture_output=True, text=True, timeout=60)


def lines_of(stderr: str, logger: str) -> list[str]:
    return [line for line in stderr.splitlines() if logger in line]


def test_json_lines_carry_the_ids_that_are_known(tmp_path):
    done = shell(tmp_path, LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    outside, inside = (json.loads(line) for line in lines_of(done.stderr, "wf.test"))
    assert outside["message"] == "outside" and outside["level"] == "WARNING" and outside["logger"] == "wf.test"
    assert outside["timestamp"].endswith("Z")
    assert not {"run_id", "step_id", "request_id"} & set(outside)  # unknown: left out, not null
    assert inside["message"] == "inside 42"
    assert (inside["run_id"], inside["step_id"]) == ("r-1", "s-1")


def test_the_default_stays_the_text_format(tmp_path):
    done = shell(tmp_path)
    assert done.returncode == 0, done.stderr
    outside, inside = lines_of(done.stderr, "wf.test")
    assert outside.endswith(" WARNING wf.test [-] outside") and inside.endswith(" WARNING wf.test [-] inside 42")


def test_an_unknown_format_stops_the_process_naming_the_variable(tmp_path):
    done = shell(tmp_path, "-c", "import config.settings", LOG_FORMAT="xml")
    assert done.returncode != 0 and "LOG_FORMAT must be plain or json" in done.stderr


@pytest.fixture
def json_lines():
    """The console handler's formatter and filters (as LOGGING sets them) on a handler of the test's own."""
    assert settings.LOGGING["formatters"]["json"] == {"()": "core.logs.JsonFormatter"}
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["request_id", "log_context"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdLogFilter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_a_request_logs_its_request_id(anon, settings, json_lines):
    settings.ROOT_URLCONF = "tests.core.urls_with_a_bug"
    anon.get("/api/v1/crash", HTTP_X_REQUEST_ID="req-json-1")
    [line] = [line for line in json_lines() if line["logger"] == "core.api"]
    assert line["request_id"] == "req-json-1" and line["level"] == "ERROR"
    assert "boom: a deliberate bug" in line["exc_info"]  # the stack trace, in the same object


@pytest.mark.django_db
def test_the_executor_logs_the_run_and_step_it_handles(json_lines):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    stale = {"run_id": str(run.id), "attempt": 99, "step_id": "s1"}
    Executor().handle(settings.KAFKA_EXECUTION_TOPIC, json.dumps(stale).encode())
    [line] = [line for line in json_lines() if line["message"].startswith("stale execution request")]
    assert (line["run_id"], line["step_id"], line["logger"]) == (str(run.id), "s1", "runs.executor")
    with log_context(run_id="elsewhere"):
        logging.getLogger("wf.other").warning("x")
    assert json_lines()[-1]["run_id"] == "elsewhere"


CELERY = (
    "import django, logging; django.setup(); from celery.signals import setup_logging; "
    "print(len([r for r in setup_logging.receivers if 'core.logs' in str(r[0])])); "
    "setup_logging.send(sender=None, loglevel='INFO', logfile=None, format='', colorize=False); "
    "logging.getLogger('wf.test').warning('from celery')"
)


def test_with_json_the_celery_processes_keep_the_json_lines(tmp_path):
    done = shell(tmp_path, "-c", CELERY, LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"  # Celery configures no logging of its own when a receiver is there
    [line] = lines_of(done.stderr, "wf.test")
    assert json.loads(line)["message"] == "from celery"
    plain = shell(tmp_path, "-c", CELERY)
    assert plain.stdout.strip() == "0"  # the text format leaves Celery's own as it was
