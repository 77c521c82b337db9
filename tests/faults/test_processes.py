"""Faults of the engine's own processes and of its database: the executor and the bridge killed with
SIGKILL mid-run and started again, the database connections of every process cut mid-run."""

import signal
import time

import pytest

from tests.faults.helpers import calls_for, calls_started, demo_agents, execute, workflow
from tests.faults.invariants import assert_completed, assert_invariants
from tests.support.system import System, wait_for

# One worker runs the module, so its system starts once (./dev test: --dist loadgroup).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group("faults-processes")]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    system = System(tmp_path_factory.mktemp("faults-processes")).start()
    try:
        demo_agents(system, "fp", "echo", "uppercase", "word_count")
        yield system
    finally:
        system.stop()


def test_executor_killed_mid_run_and_restarted_runs_complete(system):
    slow = workflow(system, "fp-echo", "fp-uppercase", "fp-word_count", s1={"delay_ms": 2500})
    fast = workflow(system, "fp-uppercase", "fp-word_count")
    in_flight = [execute(system, slow, text=f"slow run {i}") for i in range(4)]
    wait_for(lambda: calls_started(system, in_flight), timeout=30, what="the slow calls to start")

    system.processes["executor"].stop(signal.SIGKILL)
    waiting = [execute(system, fast, text=f"while down {i}") for i in range(2)]  # PENDING, nobody to take them
    time.sleep(3)  # the slow calls answer while no executor runs
    assert all(system.api("GET", f"/runs/{r}").json()["status"] == "RUNNING" for r in in_flight)
    system.processes["executor"].start()

    runs = assert_invariants(system, in_flight + waiting, timeout=40)
    assert_completed(runs)
    assert runs[in_flight[0]]["output_data"]["count"] == 3
    for run_id in in_flight:  # answered while the executor was down: recorded once, never called again
        assert len(calls_for(system, run_id, "s1")) == 1


def test_bridge_killed_with_calls_in_flight_and_restarted_runs_complete(system):
    slow = workflow(system, "fp-echo", "fp-uppercase", s1={"delay_ms": 3000})
    fast = workflow(system, "fp-uppercase", "fp-word_count")
    before = execute(system, fast, text="done before")
    assert system.run_wait(before)["status"] == "COMPLETED"
    in_flight = [execute(system, slow, text=f"in flight {i}") for i in range(4)]
    wait_for(lambda: calls_started(system, in_flight), timeout=30, what="the slow calls to start")

    system.processes["bridge"].stop(signal.SIGKILL)  # the calls in flight are never answered to anybody
    waiting = [execute(system, fast, text=f"while down {i}") for i in range(2)]
    time.sleep(1)
    system.processes["bridge"].start()

    runs = assert_invariants(system, [before, *in_flight, *waiting], timeout=40, calls_per_try=2)
    assert_completed(runs)
    assert runs[in_flight[0]]["output_data"]["text"] == "IN FLIGHT 0"
    assert len(calls_for(system, before)) == 2  # completed before the kill: not called again
    for run_id in in_flight:
        assert 1 <= len(calls_for(system, run_id, "s1")) <= 2  # in flight: at most once more
        assert len(calls_for(system, run_id, "s2")) == 1


def test_database_connections_cut_mid_run_runs_complete(system):
    if not system.on_postgres:
        pytest.skip("cutting connections needs PostgreSQL (DATABASE_URL=postgres://...); SQLite has none to cut")
    chain = workflow(
        system, "fp-echo", "fp-uppercase", "fp-echo", s1={"delay_ms": 400}, s2={"delay_ms": 400}, s3={"delay_ms": 400}
    )
    run_ids = [execute(system, chain, text=f"cut {i}") for i in range(6)]
    wait_for(lambda: calls_started(system, run_ids[:1]), timeout=30, what="the first call")
    cut = []
    for _ in range(4):
        cut.append(system.db_connections_cut())
        time.sleep(0.7)
    assert sum(cut) > 0, "no connection was cut: the test cut nothing"
    later = [execute(system, chain, text="after the cuts")]

    runs = assert_invariants(system, run_ids + later, timeout=60)
    assert_completed(runs)
    assert runs[run_ids[0]]["output_data"]["text"] == "CUT 0"
