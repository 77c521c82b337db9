"""The circuit breaker's state machine (pure functions) and its shared stores (Redis, the database)."""

import threading

import pytest
from django.db import connection

from agents import breaker
from agents.breaker_store import circuit_admit, circuit_record, circuit_release, store
from tests.factories import AgentFactory

CONFIG = breaker.config_of({"failure_threshold": 3, "timeout_seconds": 10, "half_open_max_calls": 2})
KEY = "agent-key"


def admitted(circuit, now, config=CONFIG):
    verdict, changed = breaker.admit(circuit, config, now, KEY, lease_seconds=5)
    return verdict, changed or circuit


def fail(circuit, ticket, now, config=CONFIG):
    return breaker.record(circuit, config, ticket, True, now, "Agent returned HTTP 503")


def succeed(circuit, ticket, now, config=CONFIG):
    return breaker.record(circuit, config, ticket, False, now, None)


def opened(now=100.0):
    circuit = breaker.fresh()
    for _ in range(3):
        ticket, circuit = admitted(circuit, now)
        circuit = fail(circuit, ticket, now)
    return circuit


def test_the_defaults_are_the_older_systems():
    assert breaker.config_of(None) == {
        "enabled": True,
        "failure_threshold": 5,
        "failure_rate_threshold": 0.5,
        "window_size_seconds": 120,
        "timeout_seconds": 60,
        "half_open_max_calls": 3,
    }
    assert breaker.config_of({"timeout_seconds": 5})["timeout_seconds"] == 5


@pytest.mark.parametrize(
    ("ok", "error", "failed"),
    [
        (True, None, False),
        (False, "Agent returned HTTP 500: boom (after 4 attempts)", True),
        (False, "Agent timed out after 3000 ms", True),
        (False, "Could not reach agent at http://x/: ConnectError", True),
        (False, "Agent task failed: bad input", None),  # the agent answered: says nothing of its health
        (False, "Agent returned JSON-RPC error -32602: invalid params", None),
    ],
)
def test_what_counts_as_a_failure(ok, error, failed):
    assert breaker.is_failure(ok, error) is failed


def test_failures_in_a_row_open_it_and_a_success_resets_the_count():
    circuit = breaker.fresh()
    for now in (1.0, 2.0):
        ticket, circuit = admitted(circuit, now)
        circuit = fail(circuit, ticket, now)
    ticket, circuit = admitted(circuit, 3.0)
    circuit = succeed(circuit, ticket, 3.0)
    assert circuit["state"] == breaker.CLOSED and circuit["consecutive_failures"] == 0
    circuit = opened(now=4.0)
    assert circuit["state"] == breaker.OPEN
    assert (circuit["opened_at"], circuit["retry_at"], circuit["opened_total"]) == (4.0, 14.0, 1)


def test_the_failure_rate_over_the_window_opens_it():
    config = breaker.config_of({"failure_threshold": 4, "failure_rate_threshold": 0.5})
    circuit = breaker.fresh()
    for index, failed in enumerate([True, False, True, False, True]):  # never 4 in a row
        ticket, circuit = admitted(circuit, float(index), config)
        circuit = breaker.record(circuit, config, ticket, failed, float(index), "Agent timed out")
    assert circuit["state"] == breaker.OPEN  # 3 of 5 failed, with at least failure_threshold calls


def test_failures_out_of_the_window_are_forgotten():
    config = breaker.config_of({"failure_threshold": 3, "window_size_seconds": 10})
    circuit = breaker.fresh()
    for now in (0.0, 1.0, 50.0):  # the first two are out of the window at the third
        ticket, circuit = admitted(circuit, now, config)
        circuit = fail(circuit, ticket, now, config)
    assert circuit["state"] == breaker.CLOSED and circuit["consecutive_failures"] == 1
    assert breaker.window_counts(circuit, config, 50.0) == (1, 1)


def test_outcomes_that_are_neither_change_nothing_but_the_totals():
    circuit = breaker.fresh()
    ticket, circuit = admitted(circuit, 1.0)
    circuit = fail(circuit, ticket, 1.0)
    ticket, circuit = admitted(circuit, 2.0)
    after = breaker.record(circuit, CONFIG, ticket, None, 2.0, "Agent task failed")
    assert after == {**circuit, "calls_total": circuit["calls_total"] + 1}
    trial, circuit = admitted(opened(), 200.0)
    after = breaker.record(circuit, CONFIG, trial, None, 200.0, "Agent task failed")
    assert after["state"] == breaker.HALF_OPEN and after["trials"] == {}  # its place is given back


def test_open_makes_calls_wait_until_the_timeout_then_lets_trials_in():
    circuit = opened(now=100.0)
    verdict, _ = admitted(circuit, 105.0)
    assert verdict == breaker.Wait(110.0, breaker.OPEN, 100.0)
    first, circuit = admitted(circuit, 110.0)
    second, circuit = admitted(circuit, 110.5)
    third, circuit = admitted(circuit, 111.0)
    assert circuit["state"] == breaker.HALF_OPEN
    assert first.trial and second.trial and isinstance(third, breaker.Wait)  # half_open_max_calls at once
    assert third.state == breaker.HALF_OPEN


def test_a_trial_success_closes_it_afresh_and_a_failure_reopens_it():
    circuit = opened(now=100.0)
    trial, circuit = admitted(circuit, 110.0)
    reopened = fail(circuit, trial, 111.0)
    assert reopened["state"] == breaker.OPEN and reopened["retry_at"] == 121.0 and reopened["opened_total"] == 2
    closed = succeed(circuit, trial, 111.0)
    assert closed["state"] == breaker.CLOSED
    assert (closed["consecutive_failures"], closed["buckets"], closed["opened_at"]) == (0, [], None)
    # One new failure after the outage does not reopen it.
    ticket, closed = admitted(closed, 112.0)
    assert fail(closed, ticket, 112.0)["state"] == breaker.CLOSED


def test_calls_admitted_before_a_change_count_only_in_the_totals():
    circuit = breaker.fresh()
    early, circuit = admitted(circuit, 1.0)  # in flight while the breaker opens
    circuit = opened(now=2.0)
    trial, circuit = admitted(circuit, 20.0)
    late = succeed(circuit, early, 21.0)
    assert late["state"] == breaker.HALF_OPEN and late["calls_total"] == circuit["calls_total"] + 1


def test_a_trial_whose_bridge_died_gives_its_place_back_after_its_lease():
    config = breaker.config_of({"failure_threshold": 3, "timeout_seconds": 10, "half_open_max_calls": 1})
    circuit = opened(now=100.0)
    trial, circuit = admitted(circuit, 110.0, config)
    waiting, _ = admitted(circuit, 111.0, config)
    assert isinstance(waiting, breaker.Wait)
    expiry = 110.0 + 5 + breaker.TRIAL_GRACE_SECONDS
    again, _ = admitted(circuit, expiry + 0.1, config)
    assert again.trial and again.trial != trial.trial


def test_disabled_lets_everything_through_and_closes_an_open_breaker():
    off = breaker.config_of({"enabled": False})
    circuit = opened()
    verdict, changed = breaker.admit(circuit, off, 101.0, KEY, 5)
    assert verdict.generation is None and changed is None
    after = breaker.record(circuit, off, verdict, True, 101.0, "Agent timed out")
    assert after["state"] == breaker.CLOSED and after["failures_total"] == circuit["failures_total"] + 1
    assert breaker.view(circuit, off, 101.0)["state"] == breaker.CLOSED


# --- the stores -------------------------------------------------------------------------------------


@pytest.fixture(params=["redis", "database"])
def shared(request, settings):
    """Each store in turn: Redis (REDIS_URL, as in CI) and the database (no REDIS_URL)."""
    if request.param == "redis" and not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    if request.param == "database":
        settings.REDIS_URL = None
    return request.param


@pytest.mark.django_db(transaction=True)
def test_the_store_keeps_the_state_between_calls(shared):
    agent = AgentFactory()
    key = str(agent.pk)
    for now in (1.0, 2.0, 3.0):
        ticket = circuit_admit(key, CONFIG, now, 5)
        after = circuit_record(ticket, CONFIG, True, now, "Agent returned HTTP 500")
    assert after["state"] == breaker.OPEN
    stored = store().read_many([key])[key]
    assert (stored["state"], stored["calls_total"], stored["failures_total"]) == (breaker.OPEN, 3, 3)
    assert circuit_admit(key, CONFIG, 5.0, 5) == breaker.Wait(13.0, breaker.OPEN, 3.0)
    trial = circuit_admit(key, CONFIG, 13.0, 5)
    circuit_release(trial)
    assert store().read_many([key])[key]["trials"] == {}
    if shared == "database":
        from agents.models import AgentCircuit

        assert AgentCircuit.objects.get(agent=agent).data["state"] == breaker.HALF_OPEN


@pytest.mark.django_db(transaction=True)
def test_bridges_racing_for_the_trials_get_half_open_max_calls_of_them(shared):
    # On PostgreSQL the row lock decides; on SQLite (no row locks) a lock within the process does.
    agent = AgentFactory()
    key = str(agent.pk)
    for now in (1.0, 2.0, 3.0):
        circuit_record(circuit_admit(key, CONFIG, now, 5), CONFIG, True, now, "Agent timed out")
    verdicts, barrier = [], threading.Barrier(8)

    def race():
        barrier.wait()
        try:
            verdicts.append(circuit_admit(key, CONFIG, 20.0, 5))
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trials = [verdict for verdict in verdicts if isinstance(verdict, breaker.Ticket)]
    assert len(verdicts) == 8 and len(trials) == CONFIG["half_open_max_calls"]
    assert len(store().read_many([key])[key]["trials"]) == CONFIG["half_open_max_calls"]
