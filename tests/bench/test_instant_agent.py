"""The benchmarks' instant agent (bench/instant_agent.py) answers the bridge's own client as an A2A agent
does: its card names 0.3, `message/send` and `SendMessage` echo the input, each call is in its log."""

import asyncio

import httpx
import pytest

from agents.a2a import PROTOCOL_10, AgentCall, call_agent, clear_protocol_cache
from agents.agent_http import AgentClient
from bench import instant_agent
from tests.support.http_server import asgi_server


@pytest.fixture(autouse=True)
def fresh_log():
    instant_agent.CALLS.clear()
    clear_protocol_cache()


def call(protocol=None) -> object:
    async def go(url):
        async with AgentClient() as client:
            agent = AgentCall(url=f"{url}/echo", headers={}, timeout_ms=5000, protocol=protocol)
            return await call_agent(client, agent, {"text": "hi", "n": 2}, correlation_id="corr-1", task_id="t-1")

    with asgi_server(lambda url: instant_agent.app) as url:
        result = asyncio.run(go(url))
        return result, httpx.get(f"{url}/calls").json()


@pytest.mark.parametrize("protocol", [None, PROTOCOL_10])
def test_it_echoes_the_input_and_logs_the_call_by_its_correlation_id(protocol):
    result, calls = call(protocol)
    assert result.ok, result.error
    assert {k: result.output[k] for k in ("text", "n")} == {"text": "hi", "n": 2}  # and the reply's context id
    assert result.protocol == (protocol or "0.3")  # None: discovered from its card
    assert [(c["skill"], c["correlation_id"]) for c in calls] == [("echo", "corr-1")]


def test_another_method_is_a_json_rpc_error_and_not_logged():
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=instant_agent.app)) as client:
            body = {"jsonrpc": "2.0", "id": "1", "method": "tasks/get", "params": {"id": "x"}}
            return (await client.post("http://agent.test/echo", json=body)).json()

    answer = asyncio.run(go())
    assert answer["id"] == "1" and answer["error"]["code"] == -32601
    assert instant_agent.CALLS == []
