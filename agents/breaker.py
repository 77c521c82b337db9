"""The circuit breaker of an agent: its configuration and its state machine (pure functions on a dict).

The state is shared by every bridge process through a store (`agents.breaker_store`: Redis when
REDIS_URL is set, else a database table); each change is a read-modify-write under the store's lock,
so the functions here only compute. Times are epoch seconds (the processes share the wall clock).

    closed --(failure_threshold failures in a row, or the failure rate over the window)--> open
    open --(timeout_seconds later, the next call)--> half_open (up to half_open_max_calls trials at once)
    half_open --(a trial succeeds)--> closed        half_open --(a trial fails)--> open again

Every change bumps `generation`; a call admitted in an earlier generation (in flight when the state
changed) still counts in the totals but changes no state.
"""

import math
import uuid
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)
DEFAULT_CONFIG = {
    "enabled": True,
    "failure_threshold": 5,
    "failure_rate_threshold": 0.5,
    "window_size_seconds": 120,
    "timeout_seconds": 60,
    "half_open_max_calls": 3,
}
# The window is counted in this many buckets: a fixed, small record whatever the traffic.
WINDOW_BUCKETS = 20
# A trial whose bridge died never reports: its place is given back this long after its call's timeout.
TRIAL_GRACE_SECONDS = 30
# What a2a.call_agent reports when the agent gave no A2A answer at all: these count as failures. An
# answer saying the task failed (or a JSON-RPC error, a malformed or too large answer) counts neither way.
FAILURE_PREFIXES = ("Agent returned HTTP", "Agent timed out", "Could not reach agent")


def config_of(stored: dict | None) -> dict:
    """The configuration in force: the defaults, then what the agent stored (null: the defaults)."""
    return {**DEFAULT_CONFIG, **(stored or {})}


def is_failure(ok: bool, error: str | None) -> bool | None:
    """True: a failure for the breaker; False: a success; None: neither."""
    if ok:
        return False
    return True if (error or "").startswith(FAILURE_PREFIXES) else None


def fresh() -> dict:
    return {
        "state": CLOSED,
        "generation": 0,
        "opened_at": None,
        "retry_at": None,
        "consecutive_failures": 0,
        "last_failure_at": None,
        "last_error": None,
        "buckets": [],  # [start, calls, failures], oldest first
        "trials": {},  # trial id -> when its place is given back
        "calls_total": 0,
        "failures_total": 0,
        "opened_total": 0,
    }


@dataclass(frozen=True)
class Ticket:
    """Leave to call: the generation it was given in, and the trial's id in half_open."""

    key: str
    generation: int | None  # None: the breaker is disabled
    trial: str | None = None
    waited: bool = False


@dataclass(frozen=True)
class Wait:
    """No call now; ask again at `until` (or when the state changes)."""

    until: float
    state: str
    opened_at: float | None


def admit(circuit: dict, config: dict, now: float, key: str, lease_seconds: float):
    """(Ticket or Wait, the changed circuit or None when unchanged)."""
    if not config["enabled"]:
        return Ticket(key, None), None
    state = circuit["state"]
    if state == CLOSED:
        return Ticket(key, circuit["generation"]), None
    changed = None
    if state == OPEN:
        if now < circuit["retry_at"]:
            return Wait(circuit["retry_at"], OPEN, circuit["opened_at"]), None
        changed = _moved(circuit, HALF_OPEN)
        circuit = changed
    trials = {tid: until for tid, until in circuit["trials"].items() if until > now}
    if len(trials) != len(circuit["trials"]):
        changed = circuit = {**circuit, "trials": trials}
    if len(trials) >= config["half_open_max_calls"]:
        return Wait(min(trials.values()), HALF_OPEN, circuit["opened_at"]), changed
    trial = uuid.uuid4().hex
    changed = {**circuit, "trials": {**trials, trial: now + lease_seconds + TRIAL_GRACE_SECONDS}}
    return Ticket(key, circuit["generation"], trial), changed


def record(circuit: dict, config: dict, ticket: Ticket, failed: bool | None, now: float, error: str | None) -> dict:
    """The circuit after a call admitted by `ticket` ended (`failed` as from is_failure)."""
    circuit = {**circuit, "calls_total": circuit["calls_total"] + 1}
    if failed:
        circuit.update(failures_total=circuit["failures_total"] + 1, last_error=(error or "")[:500])
    if not config["enabled"]:
        return _closed(circuit) if circuit["state"] != CLOSED else circuit
    if ticket.generation != circuit["generation"]:
        return circuit  # admitted before the last change: it says nothing about the state now
    if circuit["state"] == HALF_OPEN:
        circuit["trials"] = {tid: until for tid, until in circuit["trials"].items() if tid != ticket.trial}
        if failed is None:
            return circuit
        return _opened(circuit, config, now) if failed else _closed(circuit)
    if failed is None:
        return circuit
    circuit["buckets"] = _counted(circuit["buckets"], config, now, failed)
    if not failed:
        circuit["consecutive_failures"] = 0
        return circuit
    if circuit["last_failure_at"] is not None and circuit["last_failure_at"] < now - config["window_size_seconds"]:
        circuit["consecutive_failures"] = 0  # the earlier run of failures is out of the window
    circuit.update(consecutive_failures=circuit["consecutive_failures"] + 1, last_failure_at=now)
    calls, failures = window_counts(circuit, config, now)
    if circuit["consecutive_failures"] >= config["failure_threshold"] or (
        calls >= config["failure_threshold"] and failures / calls >= config["failure_rate_threshold"]
    ):
        return _opened(circuit, config, now)
    return circuit


def successes_record(circuit: dict, config: dict, generation: int, count: int, now: float) -> dict:
    """The circuit after `count` successful calls admitted in `generation` while it was closed (a
    bridge writes its successes in bulk: agents.breaker_calls)."""
    circuit = {**circuit, "calls_total": circuit["calls_total"] + count}
    if not config["enabled"]:
        return _closed(circuit) if circuit["state"] != CLOSED else circuit
    if generation != circuit["generation"] or circuit["state"] != CLOSED:
        return circuit  # admitted before the last change: they say nothing about the state now
    circuit["buckets"] = _counted(circuit["buckets"], config, now, False, calls=count)
    circuit["consecutive_failures"] = 0
    return circuit


def window_counts(circuit: dict, config: dict, now: float) -> tuple[int, int]:
    """(calls, failures) within the window."""
    start = now - config["window_size_seconds"]
    live = [bucket for bucket in circuit["buckets"] if bucket[0] + _width(config) > start]
    return sum(bucket[1] for bucket in live), sum(bucket[2] for bucket in live)


def view(circuit: dict | None, config: dict, now: float) -> dict:
    """What the API and the admin show of a circuit."""
    circuit = circuit or fresh()
    calls, failures = window_counts(circuit, config, now)
    state = circuit["state"] if config["enabled"] else CLOSED
    return {
        "state": state,
        "opened_at": circuit["opened_at"] if state != CLOSED else None,
        "retry_at": circuit["retry_at"] if state == OPEN else None,
        "consecutive_failures": circuit["consecutive_failures"],
        "recent_calls": calls,
        "recent_failures": failures,
        "last_error": circuit["last_error"],
    }


def _width(config: dict) -> float:
    return max(1.0, config["window_size_seconds"] / WINDOW_BUCKETS)


def _counted(buckets: list, config: dict, now: float, failed: bool, calls: int = 1) -> list:
    width = _width(config)
    start = math.floor(now / width) * width
    kept = [list(bucket) for bucket in buckets if bucket[0] + width > now - config["window_size_seconds"]]
    if kept and kept[-1][0] == start:
        kept[-1][1] += calls
        kept[-1][2] += int(failed)
    else:
        kept.append([start, calls, int(failed)])
    return kept


def _moved(circuit: dict, state: str) -> dict:
    return {**circuit, "state": state, "generation": circuit["generation"] + 1, "trials": {}}


def _opened(circuit: dict, config: dict, now: float) -> dict:
    opened = _moved(circuit, OPEN)
    opened.update(opened_at=now, retry_at=now + config["timeout_seconds"], opened_total=circuit["opened_total"] + 1)
    return opened


def _closed(circuit: dict) -> dict:
    closed = _moved(circuit, CLOSED)
    # A fresh start: failures from before the outage must not reopen it at the first new one.
    closed.update(opened_at=None, retry_at=None, consecutive_failures=0, last_failure_at=None, buckets=[])
    return closed
