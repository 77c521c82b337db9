"""The demo A2A agent, spoken to on the wire in both A2A 0.3 and 1.0."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import Task

from demo.agent import SKILLS, BoundedTaskStore, CallLog, build_app
from tests.support.http_server import asgi_server
from tests.support.server import ROOT


@pytest.fixture(scope="module")
def agent_url():
    with asgi_server(build_app) as url:
        yield url


def send(url: str, protocol: str, data: dict | None = None, text: str | None = None, correlation_id: str = "") -> dict:
    """Sends one message; returns {state, output, status_text} in protocol-neutral form, or the JSON-RPC error."""
    headers = {"X-Correlation-ID": correlation_id or f"corr-{uuid.uuid4().hex[:8]}"}
    if protocol == "1.0":
        parts = ([{"text": text}] if text else []) + ([{"data": data}] if data is not None else [])
        message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": parts}
        method, headers["A2A-Version"] = "SendMessage", "1.0"
    else:
        parts = ([{"kind": "text", "text": text}] if text else []) + (
            [{"kind": "data", "data": data}] if data is not None else []
        )
        message = {"kind": "message", "messageId": uuid.uuid4().hex, "role": "user", "parts": parts}
        method = "message/send"
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": message}}
    response = httpx.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    reply = response.json()
    if "error" in reply:
        return {"error": reply["error"]}
    task = reply["result"]["task"] if protocol == "1.0" else reply["result"]
    parts = [p for artifact in task.get("artifacts", []) for p in artifact["parts"]]
    status_parts = task["status"].get("message", {}).get("parts", [])
    return {
        "state": task["status"]["state"],
        "output": next((p["data"] for p in parts if "data" in p), None),
        "texts": [p["text"] for p in parts if "text" in p],
        "status_text": " ".join(p["text"] for p in status_parts if "text" in p),
    }


COMPLETED = {"0.3": "completed", "1.0": "TASK_STATE_COMPLETED"}
FAILED = {"0.3": "failed", "1.0": "TASK_STATE_FAILED"}


def test_root_card_lists_every_skill_and_both_protocol_versions(agent_url):
    card = httpx.get(agent_url + "/.well-known/agent-card.json").json()
    assert [s["id"] for s in card["skills"]] == list(SKILLS)
    assert {(i["protocolBinding"], i["protocolVersion"], i["url"]) for i in card["supportedInterfaces"]} == {
        ("JSONRPC", "1.0", agent_url + "/"),
        ("JSONRPC", "0.3", agent_url + "/"),
    }
    # The sdk adds the 0.3 card fields because a 0.3 interface is listed.
    assert card["protocolVersion"] == "0.3"
    assert card["url"] == agent_url + "/"


@pytest.mark.parametrize("skill", list(SKILLS))
def test_each_skill_has_its_own_card(agent_url, skill):
    card = httpx.get(f"{agent_url}/{skill}/.well-known/agent-card.json").json()
    assert [s["id"] for s in card["skills"]] == [skill]
    assert card["url"] == f"{agent_url}/{skill}"
    assert {i["url"] for i in card["supportedInterfaces"]} == {f"{agent_url}/{skill}"}


SKILL_CASES = [
    ("echo", {"text": "hi", "n": 3, "nested": {"a": [1, 2]}}, {"text": "hi", "n": 3, "nested": {"a": [1, 2]}}),
    ("uppercase", {"text": "hello world"}, {"text": "HELLO WORLD"}),
    ("word_count", {"text": "one two  three"}, {"count": 3, "words": ["one", "two", "three"]}),
    ("slow", {"seconds": 0.05, "x": "y"}, {"seconds": 0.05, "x": "y"}),
]


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
@pytest.mark.parametrize(("skill", "data", "expected"), SKILL_CASES)
def test_skills_by_input_field_and_by_path(agent_url, protocol, skill, data, expected):
    by_field = send(agent_url + "/", protocol, {**data, "skill": skill})
    by_path = send(f"{agent_url}/{skill}", protocol, data)
    assert by_field["state"] == by_path["state"] == COMPLETED[protocol]
    # Data parts travel as protobuf Values, so whole numbers come back as floats; == treats 3.0 as 3.
    assert by_path["output"] == expected
    assert by_field["output"] == ({**expected, "skill": skill} if skill in ("echo", "slow") else expected)


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
def test_text_output_goes_in_a_text_part_too(agent_url, protocol):
    assert send(agent_url + "/uppercase", protocol, {"text": "abc"})["texts"] == ["ABC"]


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/fail", {}, "Demo agent failed on purpose"),
        ("/fail", {"message": "boom"}, "boom"),
        ("/", {"skill": "fail"}, "Demo agent failed on purpose"),
        ("/echo", {"fail": True}, "Demo agent failed on purpose"),
        ("/uppercase", {"fail": True, "message": "nope"}, "nope"),
        ("/slow", {"seconds": "soon"}, "could not convert string to float"),
    ],
)
def test_failures_end_the_task_failed_with_a_message(agent_url, protocol, path, data, message):
    reply = send(agent_url + path, protocol, data)
    assert reply["state"] == FAILED[protocol]
    assert message in reply["status_text"]
    assert reply["output"] is None


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
def test_unknown_skill_is_rejected(agent_url, protocol):
    reply = send(agent_url + "/", protocol, {"skill": "juggle"})
    assert reply["state"] == {"0.3": "rejected", "1.0": "TASK_STATE_REJECTED"}[protocol]
    assert "Unknown skill 'juggle'" in reply["status_text"]


def test_delay_ms_sleeps_before_answering(agent_url):
    started = time.monotonic()
    reply = send(agent_url + "/echo", "1.0", {"delay_ms": 300})
    assert reply["state"] == "TASK_STATE_COMPLETED"
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
def test_text_only_input_is_read_as_json_object_or_as_text(agent_url, protocol):
    assert send(agent_url + "/uppercase", protocol, text='{"text": "json"}')["output"] == {"text": "JSON"}
    assert send(agent_url + "/uppercase", protocol, text="plain")["output"] == {"text": "PLAIN"}


def test_1_0_requests_need_the_version_header(agent_url):
    """The sdk treats a request without `A2A-Version` as 0.3 and refuses `SendMessage`."""
    message = {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    error = httpx.post(agent_url + "/", json=body).json()["error"]
    assert error["code"] == -32009


def test_call_log_records_skill_correlation_id_and_input(agent_url):
    assert httpx.delete(agent_url + "/calls").status_code == 204
    send(agent_url + "/uppercase", "0.3", {"text": "a", "n": 1}, correlation_id="corr-1")
    send(agent_url + "/", "1.0", {"skill": "word_count", "text": "b"}, correlation_id="corr-2")
    calls = httpx.get(agent_url + "/calls").json()
    assert [(c["skill"], c["correlation_id"], c["input"]) for c in calls] == [
        ("uppercase", "corr-1", {"text": "a", "n": 1}),
        ("word_count", "corr-2", {"skill": "word_count", "text": "b"}),
    ]
    assert all(c["at"] for c in calls)
    httpx.delete(agent_url + "/calls")
    assert httpx.get(agent_url + "/calls").json() == []


def test_call_log_keeps_only_the_latest_entries():
    log = CallLog(limit=3)
    for i in range(5):
        log.add("echo", f"c{i}", {})
    assert [e["correlation_id"] for e in log.entries] == ["c2", "c3", "c4"]


def test_task_store_forgets_the_oldest_tasks():
    async def scenario():
        store, context = BoundedTaskStore(limit=2), ServerCallContext()
        for task_id in ("t1", "t2", "t1", "t3"):
            await store.save(Task(id=task_id, context_id="c"), context)
        return [await store.get(t, context) is not None for t in ("t1", "t2", "t3")]

    assert asyncio.run(scenario()) == [True, False, True]


@pytest.mark.slow
def test_management_command_serves_and_stops_cleanly_on_sigterm():
    env = {**os.environ, "SECRET_KEY": "test-secret", "DEBUG": "0", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "manage.py", "run_demo_agent", "--port", "0"]
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        try:
            line = process.stdout.readline()
            assert line.startswith("Demo agent listening on http://127.0.0.1:"), line
            url = line.split()[4].rstrip("/")
            assert httpx.get(url + "/echo/.well-known/agent-card.json", timeout=5).json()["name"] == "Demo echo"
            assert send(url + "/echo", "1.0", {"a": "b"})["output"] == {"a": "b"}
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0
            assert "Demo agent stopped" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
