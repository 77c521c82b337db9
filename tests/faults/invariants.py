"""What must hold after every fault, checked the same way in every fault test:

- no run lost or stuck: every submitted run reaches COMPLETED, FAILED (with an error) or CANCELLED in
  time, none of its steps is left PENDING or RUNNING, and every process of the system is still up
  (a fault must not take one down: nobody would restart it);
- no completed step called again: the demo agent's call log (each call carries the step's correlation
  id) has no call for a step after it completed, neither with its own correlation id (a redelivered
  task) nor with a new one (a new try of a step that had already completed), and no try is called
  more than `calls_per_try` times;
- no duplicate run-level event: per run and attempt, each `run.*` event type of `runs_event` appears
  at most once (read straight from the system's database).
"""

import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from tests.faults.helpers import correlation_id, get_json
from tests.support.system import System

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
ACTIVE_STEP = {"PENDING", "RUNNING"}
# A redelivered task is checked (step still RUNNING) and then called; the first call's result may be
# recorded in between. A second call that reaches the agent within this much of the completion is that
# race, which at-least-once delivery allows for a try that was in flight; later ones are not.
IN_FLIGHT_RACE = timedelta(seconds=0.5)


def runs_settle(system: System, run_ids: list[str], *, timeout: float) -> dict[str, dict]:
    """Every run once it has ended; AssertionError naming the ones that did not, in `timeout` seconds."""
    deadline = time.monotonic() + timeout
    final: dict[str, dict] = {}
    last: dict[str, str] = {}
    while True:
        for run_id in run_ids:
            if run_id in final:
                continue
            run = get_json(system, f"/runs/{run_id}")
            if run is None:
                last.setdefault(run_id, "unreadable")
                continue
            last[run_id] = run["status"]
            if run["status"] in TERMINAL:
                final[run_id] = run
        if len(final) == len(run_ids):
            return final
        if time.monotonic() > deadline or processes_down(system):  # a dead process finishes nothing
            break
        time.sleep(0.3)
    stuck = [run_id for run_id in run_ids if run_id not in final]
    report = [f"{len(stuck)} of {len(run_ids)} runs did not end (waited at most {timeout} s):"]
    report += [f"  the {name} process is DOWN (exit code {code})" for name, code in processes_down(system)]
    report += [f"  {run_id}: {last.get(run_id)}" for run_id in stuck]
    for run_id in stuck[:3]:
        entries = (get_json(system, f"/runs/{run_id}/logs?page_size=100") or {}).get("items", [])
        report += [f"  {run_id} {e['timestamp']} {e['source']} {e['level']} {e['message']}" for e in entries]
    raise AssertionError("\n".join(report) + "\n" + system.logs())


def assert_invariants(
    system: System, run_ids: list[str], *, timeout: float = 60, calls_per_try: int = 1
) -> dict[str, dict]:
    """Waits for every run to end, checks the three invariants, and returns the runs by id."""
    runs = runs_settle(system, run_ids, timeout=timeout)
    calls = system.agent_calls()
    problems: list[str] = []
    for run_id, run in runs.items():
        if run["status"] == "FAILED" and not run["error_message"]:
            problems.append(f"run {run_id} FAILED without an error message")
        steps = (get_json(system, f"/runs/{run_id}/steps?page_size=100") or {}).get("items")
        if steps is None:
            problems.append(f"the steps of run {run_id} cannot be read")
            continue
        problems += [
            f"run {run_id} is {run['status']} but step {s['step_id']} (try {s['try_number']}) is {s['status']}"
            for s in steps
            if s["status"] in ACTIVE_STEP
        ]
        problems += repeated_calls(run_id, steps, calls, calls_per_try)
    problems += duplicate_run_events(system, run_ids)
    problems += [f"the {name} process is down (exit code {code})" for name, code in processes_down(system)]
    assert not problems, "\n".join(problems) + "\n" + system.logs()
    return runs


def processes_down(system: System) -> list[tuple[str, int | None]]:
    return [(name, p.popen.poll() if p.popen else None) for name, p in system.processes.items() if not p.alive()]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def repeated_calls(run_id: str, steps: list[dict], calls: list[dict], calls_per_try: int) -> list[str]:
    received = defaultdict(list)  # correlation id -> when each call reached the agent
    for call in calls:
        if (call.get("correlation_id") or "").startswith(f"corr-{run_id}-"):
            received[call["correlation_id"]].append(_when(call["at"]))
    tries = [s for s in steps if s["step_type"] == "agent" and s["task_id"]]
    problems = []
    places = defaultdict(list)  # (scope, step id) -> its tries, over every attempt
    for step in tries:
        places[(step["scope"], step["step_id"])].append(step)
        got = received.get(correlation_id(run_id, step), [])
        if len(got) > calls_per_try:
            problems.append(
                f"run {run_id} step {step['step_id']} (attempt {step['attempt']}, try {step['try_number']}) "
                f"was called {len(got)} times (at most {calls_per_try} allowed)"
            )
    for (scope, step_id), place in places.items():
        done = [_when(s["completed_at"]) for s in place if s["status"] == "COMPLETED" and s["completed_at"]]
        if not done:
            continue
        completed = min(done)
        for step in place:
            own = step["status"] == "COMPLETED" and calls_per_try > 1
            late = completed + (IN_FLIGHT_RACE if own else timedelta(0))
            for at in received.get(correlation_id(run_id, step), []):
                if at > late:
                    problems.append(
                        f"run {run_id} step {step_id}{f' in {scope}' if scope else ''} (attempt {step['attempt']},"
                        f" try {step['try_number']}) was called at {at.isoformat()}, after it completed at"
                        f" {completed.isoformat()}"
                    )
    return problems


def duplicate_run_events(system: System, run_ids: list[str]) -> list[str]:
    wanted = {str(uuid.UUID(run_id)) for run_id in run_ids}
    rows = system.db_rows("SELECT run_id, type, data FROM runs_event WHERE type LIKE %s", ("run.%",))
    seen = Counter()
    for run_id, event_type, data in rows:
        run_id = str(uuid.UUID(str(run_id)))
        if run_id in wanted:
            seen[(run_id, system.db_json(data).get("attempt"), event_type)] += 1
    return [
        f"run {run_id} attempt {attempt}: {event_type} recorded {count} times"
        for (run_id, attempt, event_type), count in sorted(seen.items(), key=str)
        if count > 1
    ]


def assert_completed(runs: dict[str, dict]) -> None:
    """Every run COMPLETED; otherwise the ones that are not, each with its status and error."""
    others = [
        f"  {run_id}: {run['status']}: {run['error_message']}"
        for run_id, run in runs.items()
        if run["status"] != "COMPLETED"
    ]
    assert not others, f"{len(others)} of {len(runs)} runs did not complete:\n" + "\n".join(others)
