"""Scale-out: two executors and two bridges (one consumer group each) on one broker share the topics'
partitions; one executor is killed with SIGKILL midway and the other takes its partitions over.
200 runs complete, every step dispatched once and its agent called once (counted at the agent)."""

import signal
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings

from tests.faults.helpers import demo_agents, execute, get_json, workflow
from tests.faults.invariants import assert_completed, assert_invariants
from tests.support.system import System, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group("faults-scale-out")]

RUNS = 200


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    extra = {
        "KAFKA_LOG_LEVEL": "INFO",
        "KAFKA_TOPIC_PARTITIONS": "4",
        # Roomier than System's 3 s: a batch of 200 messages on a busy 2-core machine can take longer
        # between polls, and a member dropped for it makes the group rebalance again and again.
        "KAFKA_MAX_POLL_INTERVAL_MS": "10000",
        "KAFKA_SESSION_TIMEOUT_MS": "5000",
        # Not System's 10 s: on a busy machine the runs wait in the backlog longer than that, and each
        # re-request adds to it. A killed executor loses no message (its partitions are redelivered).
        "EXECUTOR_LEASE_SECONDS": "60",
    }
    system = System(
        tmp_path_factory.mktemp("faults-scale-out"), extra_env=extra, web_workers=1, executors=2, bridges=2
    ).start()
    try:
        demo_agents(system, "so", "echo", "uppercase")
        yield system
    finally:
        system.stop()


def assignments(system: System, *names: str) -> dict[str, set[tuple[str, int]]] | None:
    """Every named process's partitions once they split all partitions between them, each owning some."""
    owned = {name: system.processes[name].partitions() for name in names}
    if any(not parts for parts in owned.values()):
        return None
    together = [part for parts in owned.values() for part in parts]
    if len(together) != len(set(together)):
        return None  # a rebalance under way: an old assignment is still in a log
    return owned


def completed_total(system: System, workflow_id: str) -> int:
    body = get_json(system, f"/runs?workflow_id={workflow_id}&status=COMPLETED&page_size=1")
    return body["total"] if body else 0


def test_two_executors_two_bridges_one_killed_every_run_completes_every_step_called_once(system):
    consumed = {settings.KAFKA_EXECUTION_TOPIC, settings.KAFKA_CANCELLATION_TOPIC, settings.KAFKA_RESULTS_TOPIC}
    every = {(topic, p) for topic in consumed for p in range(4)}
    executors = wait_for(
        lambda: assignments(system, "executor", "executor-2"), timeout=60, what="two executors sharing partitions"
    )
    bridges = wait_for(lambda: assignments(system, "bridge", "bridge-2"), timeout=60, what="two bridges sharing")
    assert set().union(*executors.values()) == every, executors
    assert set().union(*bridges.values()) == {(settings.KAFKA_TASKS_TOPIC, p) for p in range(4)}, bridges

    # Two steps, the first slow enough that calls are in flight when the executor dies.
    # Timeouts far above the backlog a busy 2-core machine builds: a step retried after a timeout would
    # be a second call, and this test counts calls.
    wf = workflow(system, "so-echo", "so-uppercase", timeout_seconds=600, s1={"delay_ms": 300})
    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(lambda i: execute(system, wf, text=f"run {i}"), range(RUNS // 2)))
        wait_for(lambda: completed_total(system, wf["id"]) >= 20, timeout=180, what="some runs to complete")
        completed_at_kill = completed_total(system, wf["id"])
        killed = system.processes.pop("executor")  # popped: the invariants must not count it as down
        killed.stop(signal.SIGKILL)
        second = list(pool.map(lambda i: execute(system, wf, text=f"run {i}"), range(RUNS // 2, RUNS)))
    run_ids = first + second
    assert completed_at_kill < RUNS // 2, "the first half had ended before the kill: nothing was in flight"

    runs = assert_invariants(system, run_ids, timeout=300)
    assert_completed(runs)
    assert {runs[r]["output_data"]["text"] for r in run_ids} == {f"RUN {i}" for i in range(RUNS)}
    # Every step dispatched once (one try each) and its agent called once.
    ours = set(run_ids)
    rows = system.db_rows("SELECT run_id, step_id FROM runs_stepexecution")
    dispatched = Counter((str(uuid.UUID(str(run_id))), step_id) for run_id, step_id in rows)
    dispatched = {key: n for key, n in dispatched.items() if key[0] in ours}
    assert len(dispatched) == 2 * RUNS and set(dispatched.values()) == {1}, dispatched
    # corr-<run id>-<step id>-<8 hex>: the agent's count per step, over every try
    calls = Counter(
        tuple(c["correlation_id"][5:].rsplit("-", 1)[0].rsplit("-", 1))
        for c in system.agent_calls()
        if c.get("correlation_id")
    )
    calls = {key: n for key, n in calls.items() if key[0] in ours}
    assert len(calls) == 2 * RUNS and set(calls.values()) == {1}, {k: n for k, n in calls.items() if n != 1}
    # The survivor owns every partition the two executors shared.
    assert system.processes["executor-2"].partitions() == every, killed.tail()
