"""Benchmark scale-out: engine throughput with one executor and one bridge against two of each.

The whole system in processes (tests/support/system.py, PostgreSQL), started once with two
executors and two bridges (one consumer group each, 4 partitions a topic). Each round measures both
layouts: "1 + 1" with the second executor and bridge stopped (SIGTERM; their partitions go to the
first), then "2 + 2" with them started again, each time once the groups have settled (every
partition owned, read from the processes' rebalance log lines). A layout's figure: ``--runs`` runs of
a ``--steps``-step chain against the demo agent's instant ``echo``, all submitted first through the
API (``--concurrency`` client processes), then steps per second from the first step's dispatch to the
last step's end (the database's timestamps), so the API's own rate is not in it. Also the CPU seconds
each process spent, to show what the two cores went to. Target (issue 18): 2 + 2 >= 1.6x of 1 + 1.

    .venv/bin/python bench/scale_out.py [--runs 300] [--steps 3] [--rounds 3] [--concurrency 4]
                                         [--agent instant|demo] [--json]

Every run must complete with one step execution per step; the exit code is 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import figure, load, main_with_figures  # noqa: E402
from bench.engine import chain, cpu_snapshot  # noqa: E402
from tests.support.system import System, wait_for  # noqa: E402

SECOND = ("executor-2", "bridge-2")


def settled(system: System, names: list[str], topics: set[str]) -> bool:
    """Whether `names` (one kind's running instances) own every partition of `topics` between them, once."""
    owned = [system.processes[name].partitions() for name in names]
    if any(parts is None for parts in owned):
        return False
    together = [part for parts in owned for part in parts]
    return (
        len(together) == len(set(together))
        and {topic for topic, _ in together} == topics
        and (len(together) == 4 * len(topics))
    )


def layout_set(system: System, two: bool) -> None:
    for name in SECOND:
        process = system.processes[name]
        if two and not process.alive():
            process.start()
        elif not two and process.alive():
            process.stop(signal.SIGTERM)
    executors = ["executor", "executor-2"] if two else ["executor"]
    bridges = ["bridge", "bridge-2"] if two else ["bridge"]
    consumed = {"workflow.execution.requests", "workflow.cancellation.requests", "results.topic"}
    wait_for(lambda: settled(system, executors, consumed), timeout=120, interval=0.5, what="the executors' group")
    wait_for(lambda: settled(system, bridges, {"orchestrator.tasks.http"}), timeout=120, interval=0.5, what="bridges")


def measure(system: System, args, headers: dict, label: str) -> tuple[float, dict, bool]:
    """(steps/s, CPU seconds per process, all complete and none doubled) of one batch of runs."""
    workflow_id = chain(system, f"scale-{label}-{uuid.uuid4().hex[:6]}", "scale-echo", args.steps)
    path = f"/api/v1/workflows/{workflow_id}/execute"
    body = b'{"input_data": {"text": "x"}}'
    before = cpu_snapshot(system)
    result = load(system.url, path, headers, args.runs, args.concurrency, label, method="POST", body=body, expect=202)

    def finished():
        total = system.api("GET", f"/runs?workflow_id={workflow_id}&status=PENDING,RUNNING&page_size=1").json()
        return total["total"] == 0

    wait_for(finished, timeout=900, interval=0.5, what=f"the runs of {label}")
    cpu = {name: seconds - before.get(name, 0.0) for name, seconds in cpu_snapshot(system).items()}
    first, last, steps, runs, completed = system.db_rows(
        "SELECT MIN(s.started_at), MAX(s.completed_at), COUNT(*), COUNT(DISTINCT r.id),"
        " COUNT(DISTINCT r.id) FILTER (WHERE r.status = 'COMPLETED')"
        " FROM runs_stepexecution s JOIN runs_run r ON r.id = s.run_id WHERE r.workflow_id = %s",
        (uuid.UUID(workflow_id),),
    )[0]
    rate = steps / (last - first).total_seconds()
    ok = not result.failures and runs == completed == args.runs and steps == args.runs * args.steps
    print(
        f"  {label}: {runs} runs ({completed} completed), {steps} steps in {(last - first).total_seconds():.1f} s:"
        f" {rate:.0f} steps/s; submitted at {result.rps:.0f} runs/s"
    )
    print("    CPU s: " + ", ".join(f"{n} {s:.1f}" for n, s in sorted(cpu.items(), key=lambda kv: -kv[1]) if s >= 0.1))
    return rate, cpu, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--agent", choices=("instant", "demo"), default="instant", help="as in bench/engine.py")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    extra = {
        "LOG_LEVEL": "WARNING",
        "KAFKA_LOG_LEVEL": "INFO",  # the rebalance lines tell when a layout has settled
        "KAFKA_TOPIC_PARTITIONS": "4",
        "KAFKA_MAX_POLL_INTERVAL_MS": "10000",
        "KAFKA_SESSION_TIMEOUT_MS": "5000",
        "EXECUTOR_LEASE_SECONDS": "60",
        "RUN_RECOVERY_SECONDS": "10",
    }
    rates: dict[str, list[float]] = {"1 + 1": [], "2 + 2": []}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        system = System(
            Path(tmp), extra_env=extra, web_workers=args.web_workers, executors=2, bridges=2, agent=args.agent
        ).start()
        try:
            agent = {"name": "scale-echo", "url": f"{system.agent_url}/echo", "retry_config": {"max_retries": 0}}
            assert system.api("POST", "/agents", agent).status_code == 201
            headers = {"X-API-Key": system.key, "Content-Type": "application/json"}
            layout_set(system, two=True)
            measure(system, argparse.Namespace(**{**vars(args), "runs": 30}), headers, "warm-up")
            for number in range(1, args.rounds + 1):
                print(f"round {number}:")
                for label, two in (("1 + 1", False), ("2 + 2", True)):
                    layout_set(system, two=two)
                    time.sleep(2)  # the fetchers of a new assignment start reading
                    rate, _, done = measure(system, args, headers, label)
                    rates[label].append(rate)
                    ok = ok and done
        finally:
            system.stop()
    one, two = statistics.median(rates["1 + 1"]), statistics.median(rates["2 + 2"])
    print(
        f"\nmedian of {args.rounds}: 1 + 1 {one:.0f} steps/s, 2 + 2 {two:.0f} steps/s:"
        f" {two / one:.2f}x (target >= 1.6x)"
    )
    figure("scale-out: 1 executor + 1 bridge", "", one, "steps/s")
    figure("scale-out: 2 executors + 2 bridges", "", two, "steps/s")
    figure("scale-out: 2 + 2 against 1 + 1", ">= 1.6x", two / one, "x", met=(two / one >= 1.6) and ok)
    print("OK" if ok else "FAILED: a run did not complete or had a step count other than --steps")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
