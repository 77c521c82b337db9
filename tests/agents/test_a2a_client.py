"""The bridge's A2A client against the demo agent (both protocol versions) and against misbehaving stubs."""

import asyncio
import socket

import httpx
import pytest

from agents import a2a
from agents.a2a import AgentCall, call_agent
from agents.agent_http import AgentClient
from demo.agent import build_app
from tests.support.http_server import StubServer, asgi_server

CARD_10 = {
    "name": "New",
    "supportedInterfaces": [{"url": "http://x/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
}
CARD_03 = {"name": "Old", "url": "http://x/", "protocolVersion": "0.3.0"}


def completed_task(protocol: str, data: dict) -> dict:
    if protocol == "1.0":
        task = {"id": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_COMPLETED"}}
        return {"jsonrpc": "2.0", "id": "1", "result": {"task": {**task, "artifacts": [{"parts": [{"data": data}]}]}}}
    task = {"kind": "task", "id": "t1", "contextId": "c1", "status": {"state": "completed"}}
    return {"jsonrpc": "2.0", "id": "1", "result": {**task, "artifacts": [{"parts": [{"kind": "data", "data": data}]}]}}


OK_03 = completed_task("0.3", {"answer": 42})


@pytest.fixture(autouse=True)
def fresh_protocol_cache():
    a2a.clear_protocol_cache()
    yield
    a2a.clear_protocol_cache()


@pytest.fixture(scope="module")
def agent_url():
    with asgi_server(build_app) as url:
        yield url


def call(url: str, input_data: dict | None = None, **options) -> a2a.CallResult:
    options = {"headers": {}, "timeout_ms": 5000, "initial_delay_ms": 10, **options}

    async def run():
        async with AgentClient() as client:
            return await call_agent(
                client, AgentCall(url=url, **options), input_data or {}, correlation_id="corr-1", task_id="task-1"
            )

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- against the demo agent ---------------------------------------------------------------------------

SKILL_CASES = [
    ("echo", {"text": "hi", "n": 3, "list": [1, 2.5]}, {"text": "hi", "n": 3, "list": [1, 2.5]}),
    ("uppercase", {"text": "hello world"}, {"text": "HELLO WORLD"}),
    ("word_count", {"text": "one two three"}, {"count": 3, "words": ["one", "two", "three"]}),
    ("slow", {"seconds": 0.05}, {"seconds": 0.05}),
]


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
@pytest.mark.parametrize(("skill", "data", "expected"), SKILL_CASES)
def test_each_skill_over_both_protocols(agent_url, protocol, skill, data, expected):
    result = call(f"{agent_url}/{skill}", data, protocol=protocol)
    assert result.ok, result.error
    assert result.attempts == 1
    assert result.error is None
    task_id, context_id = result.output.pop("task_id"), result.output.pop("context_id")
    assert task_id and context_id
    assert result.output == expected
    # Whole numbers come back as ints even though 1.0 carries them as doubles.
    assert all(type(result.output[k]) is type(v) for k, v in expected.items())
    assert result.duration_ms >= 0


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
def test_skill_chosen_by_input_field(agent_url, protocol):
    result = call(agent_url + "/", {"skill": "uppercase", "text": "abc"}, protocol=protocol)
    assert result.ok and result.output["text"] == "ABC"


@pytest.mark.parametrize("protocol", ["0.3", "1.0"])
@pytest.mark.parametrize(
    ("path", "data", "error"),
    [
        ("/fail", {}, "Agent task failed: Demo agent failed on purpose"),
        ("/echo", {"fail": True, "message": "custom"}, "Agent task failed: custom"),
        ("/", {"skill": "nope"}, "Agent task rejected: Unknown skill 'nope'"),
    ],
)
def test_failed_task_is_a_failure_with_the_agents_message_and_is_not_retried(agent_url, protocol, path, data, error):
    result = call(agent_url + path, data, protocol=protocol, max_retries=3)
    assert not result.ok
    assert result.output is None
    assert result.error.startswith(error)
    assert result.attempts == 1


def test_discovers_1_0_from_the_demo_agents_card_and_speaks_it(agent_url):
    httpx.delete(agent_url + "/calls")
    result = call(agent_url + "/word_count", {"text": "a b"})
    assert result.ok, result.error
    assert result.output["count"] == 2
    assert a2a._protocol_cache[agent_url + "/word_count"][0] == "1.0"
    [logged] = httpx.get(agent_url + "/calls").json()
    assert logged["correlation_id"] == "corr-1"
    assert logged["input"] == {"text": "a b"}


@pytest.mark.parametrize(
    ("card_routes", "method", "version_header"),
    [
        ({"/.well-known/agent-card.json": (200, CARD_10, 0)}, "SendMessage", "1.0"),
        ({"/.well-known/agent-card.json": (200, CARD_03, 0)}, "message/send", None),
        ({"/.well-known/agent.json": (200, CARD_03, 0)}, "message/send", None),
        ({}, "message/send", None),
    ],
    ids=["1.0-card", "0.3-card", "older-card-path", "no-card"],
)
def test_protocol_is_discovered_from_the_card(card_routes, method, version_header):
    protocol = "1.0" if version_header else "0.3"
    with StubServer({**card_routes, "/": (200, completed_task(protocol, {"x": 1}), 0)}) as server:
        result = call(server.url + "/")
        assert result.ok, result.error
        assert result.output == {"x": 1, "task_id": "t1", "context_id": "c1"}
    [(post_headers, body)] = [(h, b) for (_, h), b in zip(server.requests, server.bodies, strict=True) if b]
    assert body["method"] == method
    assert post_headers.get("A2A-Version") == version_header


def test_card_at_the_origin_is_found_for_an_agent_under_a_path():
    with StubServer(
        {"/.well-known/agent-card.json": (200, CARD_10, 0), "/a2a": (200, completed_task("1.0", {}), 0)}
    ) as s:
        assert call(s.url + "/a2a").ok
    assert s.bodies[-1]["method"] == "SendMessage"


def test_discovered_protocol_is_cached_per_url():
    with StubServer({"/.well-known/agent-card.json": (200, CARD_10, 0), "/": (200, completed_task("1.0", {}), 0)}) as s:
        assert call(s.url + "/").ok
        assert call(s.url + "/").ok
    assert [path for path, _ in s.requests].count("/.well-known/agent-card.json") == 1


def test_explicit_protocol_skips_the_card():
    with StubServer({"/": (200, OK_03, 0)}) as server:
        assert call(server.url + "/", protocol="0.3").ok
    assert [path for path, _ in server.requests] == ["/"]


def test_card_server_error_is_not_cached():
    with StubServer({"/.well-known/agent-card.json": (503, {}, 0), "/": (200, OK_03, 0)}) as server:
        assert call(server.url + "/").ok
    assert a2a._protocol_cache == {}


def test_protocol_from_card_prefers_1_0_jsonrpc():
    both = {
        "protocolVersion": "0.3",
        "supportedInterfaces": [
            {"protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
            {"protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        ],
    }
    grpc_only_10 = {"supportedInterfaces": [{"protocolBinding": "GRPC", "protocolVersion": "1.0"}]}
    assert a2a.protocol_from_card(both) == "1.0"
    assert a2a.protocol_from_card(CARD_03) == "0.3"
    assert a2a.protocol_from_card(grpc_only_10) == "0.3"
    assert a2a.protocol_from_card({}) == "0.3"
    assert [a2a.normalise_protocol(v) for v in ("1", "1.0.0", "0.3.0", "0.2.5", "")] == [
        "1.0",
        "1.0",
        "0.3",
        "0.3",
        "0.3",
    ]


# --- what goes on the wire ----------------------------------------------------------------------------


def test_auth_and_correlation_headers_reach_the_card_and_the_agent():
    routes = {"/.well-known/agent-card.json": (200, CARD_03, 0), "/": (200, OK_03, 0)}
    with StubServer(routes) as server:
        assert call(server.url + "/", headers={"Authorization": "Bearer tok-1", "X-K": "k"}).ok
    assert [path for path, _ in server.requests] == ["/.well-known/agent-card.json", "/"]
    for _, headers in server.requests:
        assert headers["Authorization"] == "Bearer tok-1"
        assert headers["X-K"] == "k"
        assert headers["X-Correlation-ID"] == "corr-1"


@pytest.mark.parametrize(
    ("input_data", "text"),
    [
        ({"text": "hello", "n": 1}, "hello"),
        ({"query": "what?"}, "what?"),
        ({"text": 5, "a": "b"}, '{"text": 5, "a": "b"}'),
        ({"text": "", "a": "b"}, '{"text": "", "a": "b"}'),
    ],
)
def test_message_has_one_text_part_and_a_data_part(input_data, text):
    old = a2a.build_request("0.3", input_data, correlation_id="c", task_id="t")
    new = a2a.build_request("1.0", input_data, correlation_id="c", task_id="t")
    assert old["method"] == "message/send"
    assert old["params"]["message"]["role"] == "user"
    assert old["params"]["message"]["parts"] == [{"kind": "text", "text": text}, {"kind": "data", "data": input_data}]
    assert new["method"] == "SendMessage"
    assert new["params"]["message"]["role"] == "ROLE_USER"
    assert new["params"]["message"]["parts"][0] == {"text": text}
    assert new["params"]["message"]["parts"][1]["data"] == input_data
    for request in (old, new):
        assert request["jsonrpc"] == "2.0"
        assert request["params"]["message"]["metadata"] == {"correlation_id": "c", "task_id": "t"}


# --- failures and retries -----------------------------------------------------------------------------


def test_http_500_is_retried_then_fails():
    with StubServer({"/": (500, {"detail": "down"}, 0)}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=2)
    assert not result.ok
    assert result.attempts == 3
    assert len(server.requests) == 3
    assert result.error.startswith("Agent returned HTTP 500")
    assert "(after 3 attempts)" in result.error


def test_http_503_then_success_recovers():
    with StubServer({"/": [(503, b"", 0), (200, OK_03, 0)]}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=3)
    assert result.ok, result.error
    assert result.attempts == 2
    assert result.output["answer"] == 42


def test_429_is_retried_honouring_retry_after():
    with StubServer({"/": [(429, {}, 0, {"Retry-After": "0.2"}), (200, OK_03, 0)]}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=1)
    assert result.ok, result.error
    assert result.attempts == 2
    assert result.duration_ms >= 200


@pytest.mark.parametrize("status", [400, 401, 404])
def test_4xx_is_not_retried(status):
    with StubServer({"/": (status, {"detail": "no"}, 0)}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=3)
    assert not result.ok
    assert result.attempts == 1
    assert len(server.requests) == 1
    assert result.error.startswith(f"Agent returned HTTP {status}")


def test_no_retry_when_the_delay_does_not_fit_the_time_budget():
    with StubServer({"/": (500, {}, 0)}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=5, initial_delay_ms=2000, timeout_ms=1000)
    assert result.attempts == 1
    assert "no time left to retry within the 1000 ms timeout" in result.error
    assert result.duration_ms < 1000


def test_backoff_is_exponential_and_capped():
    agent = AgentCall(url="u", headers={}, timeout_ms=1, initial_delay_ms=100, max_delay_ms=350, backoff_multiplier=2)
    assert [a2a._backoff_seconds(agent, n, None) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.35, 0.35]
    assert a2a._backoff_seconds(agent, 1, 0.3) == 0.3
    assert a2a._backoff_seconds(agent, 1, 999) == 0.35


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html>Bad gateway</html>", "Agent returned a response that is not JSON (HTTP 200"),
        (b"", "Agent returned a response that is not JSON (HTTP 200, application/json): <empty body>"),
        ([1, 2, 3], "Agent returned JSON that is not a JSON-RPC response: [1, 2, 3]"),
        ({"hello": "world"}, "Agent returned JSON that is not a JSON-RPC response"),
        (
            {"jsonrpc": "2.0", "id": "1", "error": {"code": -32601, "message": "Method not found"}},
            "Agent returned JSON-RPC error -32601: Method not found",
        ),
        ({"jsonrpc": "2.0", "id": "1", "result": 7}, "Agent returned a result that is neither a task nor a message"),
        (
            # working / submitted / input-required are followed or asked (tests/agents/test_a2a_tasks.py)
            {"jsonrpc": "2.0", "id": "1", "result": {"kind": "task", "id": "t", "status": {"state": "paused"}}},
            "Agent task ended in state 'paused', which is not completed",
        ),
    ],
    ids=["html", "empty", "json-list", "json-object", "jsonrpc-error", "odd-result", "unknown-state"],
)
def test_bad_answers_fail_without_retry(body, error):
    with StubServer({"/": (200, body, 0)}) as server:
        result = call(server.url + "/", protocol="0.3", max_retries=2)
    assert not result.ok
    assert result.attempts == 1
    assert result.error.startswith(error), result.error


def test_timeout_bounds_the_whole_call():
    with StubServer({"/": (200, OK_03, 1.0)}) as server:
        result = call(server.url + "/", protocol="0.3", timeout_ms=300, max_retries=3)
    assert not result.ok
    assert result.error == "Agent timed out after 300 ms"
    assert result.attempts == 1
    assert 300 <= result.duration_ms < 900


def test_timeout_during_retries_mentions_the_earlier_error():
    with StubServer({"/": [(500, {}, 0), (200, OK_03, 1.0)]}) as server:
        result = call(server.url + "/", protocol="0.3", timeout_ms=400, max_retries=3)
    assert result.error == "Agent timed out after 400 ms (2 attempts; earlier: Agent returned HTTP 500: {})"
    assert result.attempts == 2


def test_unreachable_agent_is_retried_then_fails():
    url = f"http://127.0.0.1:{free_port()}/"
    result = call(url, max_retries=2)
    assert not result.ok
    assert result.attempts == 3
    assert result.error.startswith(f"Could not reach agent at {url}: ConnectError")
    assert "(after 3 attempts)" in result.error


# --- reading results ----------------------------------------------------------------------------------


def test_direct_message_replies_in_both_versions():
    old = {"kind": "message", "messageId": "m", "contextId": "c", "parts": [{"kind": "text", "text": "hi"}]}
    new = {"message": {"messageId": "m", "contextId": "c", "parts": [{"text": "hi"}, {"data": {"n": 2.0}}]}}
    assert a2a.parse_result(old).output == {"text": "hi", "task_id": None, "context_id": "c"}
    assert a2a.parse_result(new).output == {"text": "hi", "n": 2, "task_id": None, "context_id": "c"}


def test_artifacts_are_merged_and_json_text_parts_parsed():
    task = {
        "kind": "task",
        "id": "t",
        "contextId": "c",
        "status": {"state": "completed"},
        "artifacts": [
            {"parts": [{"kind": "text", "text": "first"}, {"kind": "data", "data": {"a": 1, "text": "structured"}}]},
            {"parts": [{"kind": "text", "text": '{"b": 2}'}, {"kind": "text", "text": "second"}]},
            {"parts": [{"kind": "file", "file": {"uri": "http://f"}}, {"kind": "data", "data": ["not", "a dict"]}]},
        ],
    }
    assert a2a.parse_result(task).output == {
        "text": "structured",
        "a": 1,
        "b": 2,
        "data": ["not", "a dict"],
        "task_id": "t",
        "context_id": "c",
    }
    del task["artifacts"][0]["parts"][1]["data"]["text"]
    assert a2a.parse_result(task).output["text"] == "first\nsecond"


def test_completed_task_without_artifacts_uses_its_status_message():
    task = {"task": {"id": "t", "status": {"state": "TASK_STATE_COMPLETED", "message": {"parts": [{"text": "done"}]}}}}
    assert a2a.parse_result(task).output == {"text": "done", "task_id": "t", "context_id": None}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("completed", "completed"),
        ("TASK_STATE_COMPLETED", "completed"),
        ("TASK_STATE_INPUT_REQUIRED", "input-required"),
        ("input-required", "input-required"),
        ("TASK_STATE_CANCELED", "canceled"),
        (None, "unknown"),
    ],
)
def test_task_states_of_both_versions_are_normalised(state, expected):
    assert a2a.task_state(state) == expected
