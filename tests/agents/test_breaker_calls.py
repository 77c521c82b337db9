"""The bridge's side of the breakers costs the shared store almost nothing in the common case: a closed
answer is kept for a moment, successes are written together, and what changes the state goes at once.

Before: every call read the store to be admitted and took the circuit's lock to write its success
(in the bench a sixth of the bridge's time)."""

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agents import breaker, breaker_calls, breaker_store
from agents.breaker_calls import CircuitBreakers
from agents.breaker_store import store
from tests.factories import AgentFactory
from tests.runs.test_bridge_breaker import shared  # noqa: F401 - a fixture: each store in turn

pytestmark = pytest.mark.django_db(transaction=True)
CONFIG = {"failure_threshold": 2, "timeout_seconds": 30, "half_open_max_calls": 1}
HTTP_503 = "Agent returned HTTP 503: down"


@pytest.fixture
def counted(monkeypatch):
    """How often the store is read or changed."""
    calls = {"change": 0}
    for kind in (breaker_store.DatabaseStore, breaker_store.RedisStore):
        original = kind.change

        def change(self, key, step, original=original):
            calls["change"] += 1
            return original(self, key, step)

        monkeypatch.setattr(kind, "change", change)
    return calls


def circuit(agent) -> dict:
    return store().read_many([str(agent.pk)]).get(str(agent.pk)) or breaker.fresh()


@contextlib.asynccontextmanager
async def outside_slot():
    yield


async def read(agent) -> dict:
    return await asyncio.to_thread(circuit, agent)


async def call(breakers: CircuitBreakers, agent, error: str | None = None):
    ticket, refused = await breakers.admit(
        str(agent.pk), agent.name, CONFIG, timeout_ms=1000, left_ms=None, outside_slot=outside_slot
    )
    assert refused is None
    await breakers.record(ticket, error is None, error, CONFIG)
    return ticket


@pytest.mark.usefixtures("shared")
def test_many_successes_take_one_read_and_one_write(counted):
    agent = AgentFactory(name="fine", circuit_breaker_config=CONFIG)
    breakers = CircuitBreakers(ThreadPoolExecutor(2))

    async def calls():
        for _ in range(50):
            await call(breakers, agent)
        assert counted["change"] == 1  # the first admission read it; the others used the kept answer
        assert (await read(agent))["calls_total"] == 0  # not written yet
        await asyncio.sleep(breaker_calls.SUCCESSES_EVERY_SECONDS + 0.3)

    asyncio.run(calls())
    assert counted["change"] == 2  # and one write for the fifty
    stored = circuit(agent)
    assert stored["calls_total"] == 50 and stored["state"] == breaker.CLOSED
    assert sum(bucket[1] for bucket in stored["buckets"]) == 50  # in the window: the failure rate counts them


@pytest.mark.usefixtures("shared")
def test_a_failure_goes_at_once_with_the_successes_before_it(counted):
    agent = AgentFactory(name="flaky", circuit_breaker_config=CONFIG)
    breakers = CircuitBreakers(ThreadPoolExecutor(2))

    async def calls():
        for _ in range(3):
            await call(breakers, agent)
        await call(breakers, agent, HTTP_503)
        stored = await read(agent)
        assert (stored["calls_total"], stored["failures_total"], stored["consecutive_failures"]) == (4, 1, 1)
        await call(breakers, agent, HTTP_503)  # read again (a failure may change the state): it opens
        assert (await read(agent))["state"] == breaker.OPEN
        await breakers.successes_write()

    asyncio.run(calls())
    assert counted["change"] == 4  # a read, the first failure with the successes, a read, the second
    assert circuit(agent)["calls_total"] == 5


@pytest.mark.usefixtures("shared")
def test_another_bridge_sees_the_breaker_open_within_the_keep_time():
    agent = AgentFactory(name="down", circuit_breaker_config=CONFIG)
    first, second = CircuitBreakers(ThreadPoolExecutor(2)), CircuitBreakers(ThreadPoolExecutor(2))

    async def calls():
        await call(first, agent)  # the first bridge's answer: closed, kept for a moment
        await call(second, agent, HTTP_503)
        await call(second, agent, HTTP_503)
        assert (await read(agent))["state"] == breaker.OPEN
        kept = await call(first, agent)  # within the keep time: still let through
        assert kept.trial is None
        await asyncio.sleep(breaker_calls.ADMIT_KEEP_SECONDS + 0.1)

        started = time.monotonic()
        ticket, refused = await first.admit(
            str(agent.pk), agent.name, CONFIG, timeout_ms=1000, left_ms=300, outside_slot=outside_slot
        )
        assert ticket is None and "is open since" in refused  # waited for the trial until its deadline
        assert time.monotonic() - started >= 0.25
        await first.successes_write()

    asyncio.run(calls())
    # Successes of a closed generation after it opened count in the totals only.
    stored = circuit(agent)
    assert (stored["state"], stored["calls_total"], stored["consecutive_failures"]) == (breaker.OPEN, 4, 2)


def test_successes_of_an_earlier_generation_change_no_state():
    config = breaker.config_of(CONFIG)
    closed = breaker.fresh()
    opened = breaker.record(closed, config, breaker.Ticket("k", 0), True, 100.0, HTTP_503)
    opened = breaker.record(opened, config, breaker.Ticket("k", 0), True, 100.0, HTTP_503)
    assert opened["state"] == breaker.OPEN
    after = breaker.successes_record(opened, config, 0, 7, 101.0)
    assert after == {**opened, "calls_total": opened["calls_total"] + 7}
    counted = breaker.successes_record(closed, config, 0, 7, 101.0)
    assert counted["calls_total"] == 7 and counted["buckets"][0][1:] == [7, 0]
