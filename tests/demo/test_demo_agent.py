"""The demo A2A agent, spoken to on the wire in both A2A 0.3 and 1.0."""

import asyncio
import json
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
from demo.tasks import DEFAULT_QUESTION, DEFAULT_THINK_SECONDS, MAX_THINK_SECONDS, think_seconds
from tests.support.http_server import asgi_server
from tests.support.server import ROOT
from tests.support.system import wait_for


@pytest.fixture(scope="module")
def agent_url():
    with asgi_server(build_app) as url:
        yield url


def message(protocol: str, data: dict | None = None, text: str | None = None, task: dict | None = None) -> dict:
    """A user message in the protocol's shape; `task` ({"id", "context_id"}) makes it a reply in that task."""
    if protocol == "1.0":
        parts = ([{"text": text}] if text else []) + ([{"data": data}] if data is not None else [])
        body = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": parts}
    else:
        parts = ([{"kind": "text", "text": text}] if text else []) + (
            [{"kind": "data", "data": data}] if data is not None else []
        )
        body = {"kind": "message", "messageId": uuid.uuid4().hex, "role": "user", "parts": parts}
    if task:
        body |= {"taskId": task["id"], "contextId": task["context_id"]}
    return body


METHODS = {
    "1.0": {"send": "SendMessage", "stream": "SendStreamingMessage", "get": "GetTask", "cancel": "CancelTask"}
    | {"subscribe": "SubscribeToTask"},
    "0.3": {"send": "message/send", "stream": "message/stream", "get": "tasks/get", "cancel": "tasks/cancel"}
    | {"subscribe": "tasks/resubscribe"},
}


def rpc(url: str, protocol: str, method: str, params: dict, correlation_id: str = "") -> dict:
    """One JSON-RPC call (`method` a key of METHODS); the reply's `result` or `error`."""
    headers = {"X-Correlation-ID": correlation_id or f"corr-{uuid.uuid4().hex[:8]}"}
    if protocol == "1.0":
        headers["A2A-Version"] = "1.0"
    body = {"jsonrpc": "2.0", "id": 1, "method": METHODS[protocol][method], "params": params}
    response = httpx.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def neutral_state(state: str) -> str:
    """`TASK_STATE_INPUT_REQUIRED` (1.0) and `input-required` (0.3) both as `input-required`."""
    return state.removeprefix("TASK_STATE_").lower().replace("_", "-")


def task_view(task: dict) -> dict:
    """A task of either protocol as {id, context_id, state, output, texts, status_text, status_data}."""
    parts = [p for artifact in task.get("artifacts", []) for p in artifact["parts"]]
    status_parts = task["status"].get("message", {}).get("parts", [])
    return {
        "id": task["id"],
        "context_id": task["contextId"],
        "state": task["status"]["state"],
        "output": next((p["data"] for p in parts if "data" in p), None),
        "texts": [p["text"] for p in parts if "text" in p],
        "status_text": " ".join(p["text"] for p in status_parts if "text" in p),
        "status_data": next((p["data"] for p in status_parts if "data" in p), None),
    }


def send(
    url: str,
    protocol: str,
    data: dict | None = None,
    text: str | None = None,
    correlation_id: str = "",
    task: dict | None = None,
) -> dict:
    """Sends one (blocking) message; returns the task in protocol-neutral form (task_view), or the JSON-RPC error."""
    reply = rpc(url, protocol, "send", {"message": message(protocol, data, text, task)}, correlation_id)
    if "error" in reply:
        return {"error": reply["error"]}
    return task_view(reply["result"]["task"] if protocol == "1.0" else reply["result"])


def get_task(url: str, protocol: str, task_id: str) -> dict:
    return task_view(rpc(url, protocol, "get", {"id": task_id})["result"])


def stream(url: str, protocol: str, method: str, params: dict) -> list[tuple[float, str, str]]:
    """A streaming call read to its end: (seconds since the call, event kind, neutral state or "") per event."""
    headers = {"A2A-Version": "1.0"} if protocol == "1.0" else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": METHODS[protocol][method], "params": params}
    started, events = time.monotonic(), []
    with httpx.stream("POST", url, json=body, headers=headers, timeout=20) as response:
        assert response.headers["content-type"].startswith("text/event-stream"), response.read()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            result = json.loads(line.removeprefix("data:"))["result"]
            if protocol == "1.0":
                [(kind, event)] = result.items()
            else:
                kind, event = {"task": "task", "status-update": "statusUpdate"}.get(result["kind"], "other"), result
            state = event["status"]["state"] if "status" in event else ""
            events.append((time.monotonic() - started, kind, neutral_state(state) if state else ""))
    return events


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


@pytest.mark.parametrize("path", ["/", "/echo", "/think", "/think-stream", "/ask-stream"])
def test_every_agent_is_also_served_as_an_older_one_that_speaks_only_0_3(agent_url, path):
    newer = httpx.get(agent_url + path.rstrip("/") + "/.well-known/agent-card.json").json()
    older = httpx.get(agent_url + "/0.3" + path.rstrip("/") + "/.well-known/agent-card.json").json()
    assert older["url"] == agent_url + "/0.3" + path
    assert [(i["protocolVersion"], i["url"]) for i in older["supportedInterfaces"]] == [("0.3", older["url"])]
    assert (older["skills"], older["capabilities"]) == (newer["skills"], newer["capabilities"])
    assert older["name"] == newer["name"] + " (A2A 0.3)"


def test_an_older_agent_works_over_0_3(agent_url):
    assert send(agent_url + "/0.3/uppercase", "0.3", {"text": "old"})["output"] == {"text": "OLD"}
    assert state_of(send(agent_url + "/0.3/ask", "0.3", {"question": "?"})) == "input-required"


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


# -- skills that answer with an unfinished task: think and ask -----------------------------------------

PROTOCOLS = ["0.3", "1.0"]


def state_of(reply: dict) -> str:
    return neutral_state(reply["state"])


def test_think_and_ask_have_cards_without_and_with_streaming(agent_url):
    for skill in ("think", "ask"):
        plain = httpx.get(f"{agent_url}/{skill}/.well-known/agent-card.json").json()
        streaming = httpx.get(f"{agent_url}/{skill}-stream/.well-known/agent-card.json").json()
        assert plain["capabilities"].get("streaming", False) is False
        assert streaming["capabilities"]["streaming"] is True
        assert [s["id"] for s in streaming["skills"]] == [skill]
        assert {i["url"] for i in streaming["supportedInterfaces"]} == {f"{agent_url}/{skill}-stream"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_think_answers_working_at_once_and_get_task_sees_it_complete(agent_url, protocol):
    started = time.monotonic()
    reply = send(agent_url + "/think", protocol, {"seconds": 1, "topic": "tea"})
    assert time.monotonic() - started < 0.8, "a blocking call must get the working task back at once"
    assert state_of(reply) == "working"
    assert reply["status_text"] == "Thinking for 1 s"
    assert reply["output"] is None
    assert state_of(get_task(agent_url + "/think", protocol, reply["id"])) == "working"
    done = wait_for(
        lambda: (task := get_task(agent_url + "/think", protocol, reply["id"]))["state"] != reply["state"] and task,
        timeout=5,
        interval=0.05,
        what="the think task to finish",
    )
    assert state_of(done) == "completed"
    assert done["output"] == {"seconds": 1, "topic": "tea", "thought_seconds": 1}
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_think_is_followed_by_subscribing_on_the_streaming_agent(agent_url, protocol):
    reply = send(agent_url + "/think-stream", protocol, {"seconds": 2.2})
    assert state_of(reply) == "working"
    events = stream(agent_url + "/think-stream", protocol, "subscribe", {"id": reply["id"]})
    # The task first, a progress update each whole second, then the final state as the last event.
    assert events[0][1:] == ("task", "working")
    assert [e[1:] for e in events if e[1] == "statusUpdate"] == [("statusUpdate", "working")] * 2 + [
        ("statusUpdate", "completed")
    ]
    assert events[-1][1:] == ("statusUpdate", "completed")
    assert 1.8 < events[-1][0] < 4
    assert get_task(agent_url + "/think-stream", protocol, reply["id"])["output"]["thought_seconds"] == 2.2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_streamed_think_stays_open_until_the_task_ends(agent_url, protocol):
    events = stream(agent_url + "/think-stream", protocol, "stream", {"message": message(protocol, {"seconds": 0.5})})
    assert events[0][1:] == ("task", "submitted")
    assert ("statusUpdate", "working") in [e[1:] for e in events]
    assert events[-1][1:] == ("statusUpdate", "completed")
    assert events[-1][0] >= 0.5


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_agent_without_streaming_refuses_to_subscribe(agent_url, protocol):
    reply = send(agent_url + "/think", protocol, {"seconds": 0.3})
    headers = {"A2A-Version": "1.0"} if protocol == "1.0" else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": METHODS[protocol]["subscribe"], "params": {"id": reply["id"]}}
    response = httpx.post(agent_url + "/think", json=body, headers=headers, timeout=10)
    # 1.0 answers a plain JSON-RPC error; the 0.3 adapter an event stream holding just that error.
    error = json.loads(response.text.removeprefix("data:"))["error"]
    assert "Streaming is not supported" in error["message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cancelling_a_thinking_task_stops_it_and_is_recorded(agent_url, protocol):
    httpx.delete(agent_url + "/cancels")
    reply = send(agent_url + "/think", protocol, {"seconds": 1})
    cancelled = rpc(agent_url + "/think", protocol, "cancel", {"id": reply["id"]})["result"]
    assert state_of(task_view(cancelled)) == "canceled"
    time.sleep(1.2)  # past the time it would have finished: it stays cancelled
    assert state_of(get_task(agent_url + "/think", protocol, reply["id"])) == "canceled"
    [entry] = httpx.get(agent_url + "/cancels").json()
    assert entry["task_id"] == reply["id"] and entry["context_id"] == reply["context_id"]
    assert (entry["skill"], entry["state"], entry["was_running"]) == ("think", "TASK_STATE_WORKING", True)
    # A finished task cannot be cancelled; that reaches nobody.
    assert "error" in rpc(agent_url + "/think", protocol, "cancel", {"id": reply["id"]})
    assert len(httpx.get(agent_url + "/cancels").json()) == 1
    assert httpx.delete(agent_url + "/cancels").status_code == 204
    assert httpx.get(agent_url + "/cancels").json() == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("data", "message_text"),
    [
        ({"seconds": "soon"}, "could not convert string to float"),
        ({"seconds": -1}, "seconds must be a number >= 0"),
        ({"seconds": 0.2, "fail": True, "message": "no idea"}, "no idea"),
    ],
)
def test_think_fails_on_bad_seconds_at_once_and_on_fail_after_thinking(agent_url, protocol, data, message_text):
    reply = send(agent_url + "/think", protocol, data)
    if state_of(reply) == "working":
        time.sleep(0.4)
        reply = get_task(agent_url + "/think", protocol, reply["id"])
    assert state_of(reply) == "failed"
    assert message_text in reply["status_text"]


def test_think_seconds_default_and_cap():
    assert think_seconds({}) == DEFAULT_THINK_SECONDS
    assert think_seconds({"seconds": 10_000}) == MAX_THINK_SECONDS
    with pytest.raises(ValueError):
        think_seconds({"seconds": float("nan")})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_message_to_a_thinking_task_changes_nothing(agent_url, protocol):
    reply = send(agent_url + "/think", protocol, {"seconds": 0.5})
    again = send(agent_url + "/think", protocol, text="hurry up", task=reply)
    assert (again["id"], state_of(again)) == (reply["id"], "working")
    time.sleep(0.7)
    assert state_of(get_task(agent_url + "/think", protocol, reply["id"])) == "completed"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("path", ["/ask", "/ask-stream"])
def test_ask_needs_input_and_the_next_message_completes_it_with_the_answer(agent_url, protocol, path):
    httpx.delete(agent_url + "/calls")
    question = {"question": "Which colour?", "options": ["red", "blue"]}
    asked = send(agent_url + path, protocol, question, correlation_id="corr-ask")
    assert state_of(asked) == "input-required"
    assert asked["status_text"] == "Which colour?"
    assert asked["status_data"] == question
    assert state_of(get_task(agent_url + path, protocol, asked["id"])) == "input-required"

    done = send(agent_url + path, protocol, {"shade": "dark"}, text="blue", correlation_id="corr-ask", task=asked)
    assert (done["id"], done["context_id"], state_of(done)) == (asked["id"], asked["context_id"], "completed")
    assert done["output"] == {"question": "Which colour?", "answer": "blue", "data": {"shade": "dark"}}
    calls = httpx.get(agent_url + "/calls").json()
    assert [(c["skill"], c["reply"], c["task_id"]) for c in calls] == [("ask", False, asked["id"])] * 1 + [
        ("ask", True, asked["id"])
    ]
    assert calls[1]["input"] == {"text": "blue", "data": {"shade": "dark"}}
    assert calls[0]["message_id"] != calls[1]["message_id"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ask_with_auth_needs_authorization_and_a_data_only_reply_completes_it(agent_url, protocol):
    asked = send(agent_url + "/", protocol, {"skill": "ask", "auth": True, "question": "Sign in at https://x"})
    assert state_of(asked) == "auth-required"
    assert asked["status_data"] == {"question": "Sign in at https://x"}
    done = send(agent_url + "/", protocol, {"token": "t-1"}, task=asked)
    assert state_of(done) == "completed"
    assert done["output"] == {"question": "Sign in at https://x", "answer": None, "data": {"token": "t-1"}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ask_asks_again_on_an_empty_reply_and_without_a_question_uses_its_own(agent_url, protocol):
    asked = send(agent_url + "/ask", protocol, {})
    assert asked["status_text"] == DEFAULT_QUESTION
    again = send(agent_url + "/ask", protocol, {}, task=asked)
    assert (state_of(again), again["status_text"]) == ("input-required", DEFAULT_QUESTION)
    assert state_of(send(agent_url + "/ask", protocol, text="42", task=asked)) == "completed"
    # A finished task takes no more messages.
    assert "error" in send(agent_url + "/ask", protocol, text="43", task=asked)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cancelling_a_question_is_recorded(agent_url, protocol):
    httpx.delete(agent_url + "/cancels")
    asked = send(agent_url + "/ask-stream", protocol, {"auth": True})
    cancelled = rpc(agent_url + "/ask-stream", protocol, "cancel", {"id": asked["id"]})["result"]
    assert state_of(task_view(cancelled)) == "canceled"
    [entry] = httpx.get(agent_url + "/cancels").json()
    assert (entry["task_id"], entry["skill"], entry["state"]) == (asked["id"], "ask", "TASK_STATE_AUTH_REQUIRED")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_streamed_question_ends_at_the_question_and_a_streamed_reply_at_the_answer(agent_url, protocol):
    url = agent_url + "/ask-stream"
    asked = stream(url, protocol, "stream", {"message": message(protocol, {"question": "Go?"})})
    assert asked[-1][1:] == ("statusUpdate", "input-required")
    [task_id] = {t["task_id"] for t in httpx.get(agent_url + "/calls").json()[-1:]}
    task = get_task(url, protocol, task_id)
    replied = stream(url, protocol, "stream", {"message": message(protocol, text="yes", task=task)})
    assert replied[-1][1:] == ("statusUpdate", "completed")
    assert get_task(url, protocol, task_id)["output"]["answer"] == "yes"


def test_the_command_listens_before_it_says_so(monkeypatch):
    """A client that connects as soon as it reads "listening on" is not refused while uvicorn starts."""
    import io
    import socket

    import uvicorn
    from django.core.management import call_command

    seen = {}

    def run(self, sockets):  # in place of serving: connect to the port the command announced
        port = sockets[0].getsockname()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            seen["connected"] = True
        except OSError as exc:
            seen["connected"] = exc
        finally:
            sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    out = io.StringIO()
    call_command("run_demo_agent", "--port", "0", stdout=out)
    assert out.getvalue().startswith("Demo agent listening on http://127.0.0.1:")
    assert seen == {"connected": True}
