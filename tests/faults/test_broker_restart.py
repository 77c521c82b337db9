"""Fault: the embedded broker is killed mid-run and comes back EMPTY on the same port.

The executor must notice at once that the broker lost its messages and send again what was in
flight: the agent tasks of RUNNING steps and the execution requests of PENDING runs. Leases are long
here (120 s) and so are step timeouts, so neither the recovery task nor a step deadline can be what
finishes the runs within the time the test allows.

The embedded broker (tansu 0.6.0) may drop the first batch written to a partition after it restarts
empty ("AlreadyExists ...00000000000000000000.batch" in its log): a task or a result written then is
lost as well. The executor's later rounds of sending (KAFKA_LOSS_RESEND_AGAIN_SECONDS) cover that."""

import pytest

from tests.faults.helpers import calls_started, demo_agents, execute, get_json, workflow
from tests.faults.invariants import assert_completed, assert_invariants
from tests.support.system import System, wait_for

# One worker runs the module, so its system starts once (./dev test: --dist loadgroup).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group("faults-broker")]

# Few bridge slots: the slow calls take them all, so the next tasks wait in the topic, unread, when
# the broker goes away (the messages only the executor can send again).
SLOTS = 3


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    extra = {"EXECUTOR_LEASE_SECONDS": "120", "BRIDGE_MAX_IN_FLIGHT": str(SLOTS)}
    system = System(tmp_path_factory.mktemp("faults-broker"), extra_env=extra).start()
    try:
        demo_agents(system, "fb", "echo", "uppercase", "word_count")
        yield system
    finally:
        system.stop()


def test_broker_restarted_empty_mid_run_every_run_completes(system):
    slow = workflow(system, "fb-echo", "fb-uppercase", s1={"delay_ms": 4000})
    fast = workflow(system, "fb-uppercase", "fb-word_count")
    # A warm-up run: every consumer has joined and read before the fault.
    warm = execute(system, fast, text="warm up")
    assert system.run_wait(warm)["status"] == "COMPLETED"

    in_flight = [execute(system, slow, text=f"slow {i}") for i in range(SLOTS)]
    wait_for(lambda: calls_started(system, in_flight), timeout=30, what="the slow calls to start")
    queued = [execute(system, slow, text=f"queued {i}") for i in range(2)]  # dispatched, not yet called
    wait_for(lambda: all(_dispatched(system, r) for r in queued), timeout=15, what="the queued tasks to be sent")
    submitted = [execute(system, fast, text=f"just submitted {i}") for i in range(3)]

    system.restart("kafka", down=2)  # SIGKILL; back 2 s later on the same port, with nothing in it

    # In 40 s: long before any lease (120 s) or step deadline (120 s) could bring the runs back.
    runs = assert_invariants(system, in_flight + queued + submitted, timeout=40, calls_per_try=2)
    assert_completed(runs)
    assert runs[in_flight[0]]["output_data"]["text"] == "SLOW 0"
    assert runs[submitted[0]]["output_data"]["count"] == 3

    after = execute(system, fast, text="business as usual")
    assert_invariants(system, [after], timeout=20)


def _dispatched(system, run_id: str) -> bool:
    steps = (get_json(system, f"/runs/{run_id}/steps") or {}).get("items", [])
    return any(s["step_id"] == "s1" and s["status"] == "RUNNING" for s in steps)
