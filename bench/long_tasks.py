"""Benchmark agents that take time (A2A tasks): many runs whose agent answers `working` and finishes later.

What it measures (the whole system in processes, as `tests/support/system.py` starts it: gunicorn,
Celery worker + beat, executor, bridge, the embedded broker and the demo agent, on PostgreSQL)

    For each follow mode, ``--runs`` runs (default 100) of a two-step workflow are started at once
    (``POST /workflows/{id}/execute`` from ``--concurrency`` client processes): s1 calls the demo
    agent's ``think`` skill with ``seconds`` = ``--seconds`` (default 5), which answers ``working`` at
    once and completes that much later; s2 calls the instant ``echo`` skill with s1's output.

    * polling: the agent at ``/think``, whose card does not stream (the bridge polls ``GetTask``);
    * streaming: the agent at ``/think-stream``, whose card streams (the bridge subscribes).

    Figures per mode:
    (a) the time from the first trigger until every run is COMPLETED (target: within ``--seconds`` + 3 s,
        8 s for 5 s tasks: the followers do not serialize);
    (b) the bridge's RSS (peak of the samples taken every 0.2 s while the runs go, and the end) and its
        open connections (TCP sockets of the bridge process, in all and to the demo agent; peak); the
        CPU seconds every process spent meanwhile;
    (c) the latency from the agent's task completing (the completed task's status timestamp, read back
        from the demo agent with ``GetTask``) to the dispatch of the next step (s2's ``started_at``):
        median, p95, max (targets: median under 300 ms polling, under 50 ms streaming), split at s1's
        ``completed_at`` (the executor recording the bridge's result);
    (d) the latency of (c) again for ``--staggered`` runs (default 20) triggered ``--stagger-ms`` (300) apart,
        so their tasks end one by one: what following costs without the queue that 100 results arriving
        at the same moment build up in the executor;
    and checks: every run COMPLETED, each called the agent's think skill exactly once.

How to run (from the project root, PostgreSQL on 127.0.0.1:5432 with trust auth, or BENCH_DATABASE_URL)::

    .venv/bin/python bench/long_tasks.py [--runs 100] [--seconds 5] [--concurrency 8] [--modes polling,streaming]
                                         [--poll-initial-ms 200] [--poll-max-ms 500] [--staggered 20]
                                         [--stagger-ms 300] [--web-workers 2]

``--poll-initial-ms`` / ``--poll-max-ms`` set A2A_POLL_INITIAL_MS / A2A_POLL_MAX_MS (the bridge's
defaults otherwise). BENCH_KEEP=<folder> keeps the processes' logs there. The exit code is 1 when a
run did not complete or called the agent more than once (a target missed is reported, not an error).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import figure, load, main_with_figures, ms, when  # noqa: E402
from tests.support.system import System, wait_for  # noqa: E402

MODES = {"polling": "/think", "streaming": "/think-stream"}
LATENCY_TARGET_MS = {"polling": 300, "streaming": 50}


# --------------------------------------------------------------------------- the bridge process, from /proc


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids += process_tree(int(child))
    return pids


def rss_mb(pid: int) -> float:
    total = 0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def tcp_connections(pid: int, port: int) -> tuple[int, int]:
    """(established TCP connections of the process tree, those of them to `port` on this machine)."""
    inodes = set()
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{each}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    total = to_port = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes and fields[3] == "01":  # 01: ESTABLISHED
                    total += 1
                    to_port += int(fields[2].rsplit(":", 1)[1], 16) == port
    return total, to_port


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (gunicorn and Celery fork workers), from /proc."""
    total = 0.0
    for each in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_snapshot(system: System) -> dict[str, float]:
    return {name: cpu_seconds(p.popen.pid) for name, p in system.processes.items() if p.alive()}


class Sampler:
    """Samples the bridge's RSS and connections every 0.2 s in a thread, keeping the peaks."""

    def __init__(self, system: System):
        self.pid = system.processes["bridge"].popen.pid
        self.agent_port = system.agent_port
        self.peak_rss = self.peak_total = self.peak_agent = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stopped.wait(0.2):
            self.peak_rss = max(self.peak_rss, rss_mb(self.pid))
            total, agent = tcp_connections(self.pid, self.agent_port)
            self.peak_total, self.peak_agent = max(self.peak_total, total), max(self.peak_agent, agent)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()


# --------------------------------------------------------------------------- the system, as a user


def two_steps(system: System, name: str, agent: str, seconds: float) -> str:
    definition = {
        "name": name,
        "start_step": "s1",
        "steps": {
            "s1": {
                "id": "s1",
                "agent_name": agent,
                "input_mapping": {"seconds": seconds},
                "next_step": "s2",
                "timeout_seconds": 300,
            },
            "s2": {"id": "s2", "agent_name": "bench-echo", "input_mapping": {"from_s1": "${s1.output}"}},
        },
    }
    response = system.api("POST", "/workflows", definition)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def runs_of(system: System, workflow_id: str) -> list[dict]:
    runs, page = [], 1
    while True:
        body = system.api("GET", f"/runs?workflow_id={workflow_id}&page_size=100&page={page}").json()
        runs += body["items"]
        if page * 100 >= body["total"]:
            return runs
        page += 1


def unfinished(system: System, workflow_id: str) -> int:
    return system.api("GET", f"/runs?workflow_id={workflow_id}&status=PENDING,RUNNING&page_size=1").json()["total"]


def agent_task_finished_at(system: System, path: str, task_id: str) -> datetime:
    """When the demo agent's task reached its final state (its status timestamp), asked with GetTask."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task_id}}
    reply = httpx.post(system.agent_url + path, json=body, headers={"A2A-Version": "1.0"}, timeout=10).json()
    return when(reply["result"]["status"]["timestamp"])


def think_calls(system: System) -> dict[str, int]:
    """Run id -> how many times the demo agent's think skill was called for it (replies not counted)."""
    calls: dict[str, int] = {}
    for call in system.agent_calls():
        if call["skill"] == "think" and not call.get("reply"):
            run_id = (call.get("correlation_id") or "")[5:41]
            calls[run_id] = calls.get(run_id, 0) + 1
    return calls


def latency_lines(system: System, path: str, runs: list[dict], target_ms: float) -> list[str]:
    """The agent's task completing -> s2 dispatched, split at s1's COMPLETED (the executor recording it)."""
    latencies, seen, recorded, dispatched = [], [], [], []
    for run in runs:
        steps = {s["step_id"]: s for s in system.api("GET", f"/runs/{run['id']}/steps").json()["items"]}
        finished = agent_task_finished_at(system, path, steps["s1"]["agent_task_id"])
        s1_done, s2_started = when(steps["s1"]["completed_at"]), when(steps["s2"]["started_at"])
        latencies.append((s2_started - finished).total_seconds() * 1000)
        recorded.append((s1_done - finished).total_seconds() * 1000)
        dispatched.append((s2_started - s1_done).total_seconds() * 1000)
        # The bridge logs the answer stamped with when it had it, before it publishes the result.
        entries = system.api("GET", f"/runs/{run['id']}/logs?step_id=s1&page_size=100").json()["items"]
        answered = [e for e in entries if e["source"] == "bridge" and " answered in " in e["message"]]
        if answered:
            seen.append((when(answered[-1]["timestamp"]) - finished).total_seconds() * 1000)
    verdict = ""
    if latencies:
        hit = statistics.median(latencies) < target_ms
        verdict = f" (target: median < {target_ms:g} ms: {'meets' if hit else 'MISSES'} target)"
        figure(
            f"long tasks {path}: task done -> next dispatch, median",
            f"< {target_ms:g} ms",
            statistics.median(latencies),
            "ms",
        )
    return [
        f"agent's task completed -> next step dispatched: {ms(latencies)}{verdict}",
        f"  of which agent's task completed -> the bridge has the answer (its run log entry): {ms(seen)}",
        f"  agent's task completed -> s1 COMPLETED (bridge, Kafka, executor): {ms(recorded)}",
        f"  and s1 COMPLETED -> s2 dispatched (executor): {ms(dispatched)}",
    ]


def bench_mode(system: System, args, mode: str, headers: dict) -> bool:
    path = MODES[mode]
    agent = f"bench-think-{mode}"
    workflow_id = two_steps(system, f"bench-long-{mode}", agent, args.seconds)
    url = f"/api/v1/workflows/{workflow_id}/execute"
    body = json.dumps({"input_data": {}}).encode()
    started, cpu_before = time.monotonic(), cpu_snapshot(system)
    with Sampler(system) as sampler:
        result = load(
            system.url, url, headers, args.runs, args.concurrency, "runs", method="POST", body=body, expect=202
        )
        triggered = time.monotonic() - started
        wait_for(lambda: unfinished(system, workflow_id) == 0, timeout=args.seconds + 300, interval=0.1, what="runs")
        elapsed = time.monotonic() - started
    end_rss = rss_mb(sampler.pid)
    cpu = {name: value - cpu_before.get(name, 0.0) for name, value in cpu_snapshot(system).items()}
    runs = runs_of(system, workflow_id)
    completed = [r for r in runs if r["status"] == "COMPLETED"]
    calls = think_calls(system)
    repeated = [r["id"] for r in runs if calls.get(r["id"]) != 1]
    target = args.seconds + 3
    print(f"{mode} ({path}): {args.runs} runs of a {args.seconds:g} s think step, then an echo step")
    print(
        f"  (a) {len(runs)} created ({sum(result.failures.values())} triggers failed {result.failures or ''}), "
        f"{len(completed)} completed, {len(repeated)} calling think other than once"
    )
    print(
        f"      all completed {elapsed:.2f} s after the first trigger (triggers took {triggered:.2f} s; "
        f"target: within {target:g} s: {'meets' if elapsed <= target else 'MISSES'} target)"
    )
    all_done = len(completed) == args.runs and not repeated
    figure(
        f"long tasks {mode}: {args.runs} runs all completed after",
        f"<= {target:g} s",
        elapsed,
        "s",
        met=all_done and elapsed <= target,
    )
    print(
        f"  (b) bridge RSS peak {sampler.peak_rss:.0f} MB, at the end {end_rss:.0f} MB; open TCP connections "
        f"peak {sampler.peak_total:.0f} ({sampler.peak_agent:.0f} to the demo agent)"
    )
    spent = ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]))
    print(f"      CPU seconds meanwhile ({elapsed:.1f} s of wall time, {os.cpu_count()} cores): {spent}")
    for number, line in enumerate(latency_lines(system, path, completed, LATENCY_TARGET_MS[mode])):
        print(f"  {'(c)' if number == 0 else '   '} {line}")
    ok = len(completed) == args.runs and not repeated
    if args.staggered:
        ok = bench_staggered(system, args, mode, headers) and ok
    return ok


def bench_staggered(system: System, args, mode: str, headers: dict) -> bool:
    """The same latency when the tasks end one by one (triggered `--stagger-ms` apart), not all at once:
    what following costs, without the queue that 100 results at the same moment build in the executor."""
    path = MODES[mode]
    workflow_id = two_steps(system, f"bench-staggered-{mode}", f"bench-think-{mode}", args.seconds)
    for _ in range(args.staggered):
        response = system.api("POST", f"/workflows/{workflow_id}/execute", {"input_data": {}})
        assert response.status_code == 202, response.text
        time.sleep(args.stagger_ms / 1000)
    wait_for(lambda: unfinished(system, workflow_id) == 0, timeout=args.seconds + 300, interval=0.1, what="runs")
    runs = runs_of(system, workflow_id)
    completed = [r for r in runs if r["status"] == "COMPLETED"]
    print(f"  (d) {args.staggered} runs triggered {args.stagger_ms} ms apart: {len(completed)} completed")
    for line in latency_lines(system, path, completed, LATENCY_TARGET_MS[mode]):
        print(f"      {line}")
    return len(completed) == args.staggered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--modes", default="polling,streaming", help="comma-separated: polling, streaming")
    parser.add_argument("--poll-initial-ms", type=int, default=None, help="A2A_POLL_INITIAL_MS (default: the bridge's)")
    parser.add_argument("--poll-max-ms", type=int, default=None, help="A2A_POLL_MAX_MS (default: the bridge's)")
    parser.add_argument("--staggered", type=int, default=20, help="runs of (d); 0 skips it")
    parser.add_argument("--stagger-ms", type=int, default=300, help="time between the triggers of (d)")
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; expected {', '.join(MODES)}")
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    extra = {"LOG_LEVEL": "WARNING", "EXECUTOR_LEASE_SECONDS": "60", "RUN_RECOVERY_SECONDS": "10"}
    if args.poll_initial_ms:
        extra["A2A_POLL_INITIAL_MS"] = str(args.poll_initial_ms)
    if args.poll_max_ms:
        extra["A2A_POLL_MAX_MS"] = str(args.poll_max_ms)
    keep = os.environ.get("BENCH_KEEP")  # a folder that keeps the processes' logs, for a look after a failure
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
    ok = True
    with contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory() as tmp:
        system = System(Path(tmp), extra_env=extra, web_workers=args.web_workers).start()
        try:
            agents = {"bench-echo": "/echo", **{f"bench-think-{m}": MODES[m] for m in MODES}}
            for name, path in agents.items():
                body = {"name": name, "url": system.agent_url + path, "retry_config": {"max_retries": 0}}
                response = system.api("POST", "/agents", body)
                assert response.status_code == 201, response.text
            headers = {"X-API-Key": system.key, "Content-Type": "application/json"}
            settings = {k: v for k, v in extra.items() if k.startswith("A2A_")} or "the bridge's defaults"
            print(f"long A2A tasks benchmark, {os.cpu_count()} CPUs; polling settings: {settings}")
            # Warm-up: one run per mode, so the first measured triggers do not pay for cold caches.
            for mode in modes:
                warm = two_steps(system, f"bench-warm-{mode}", f"bench-think-{mode}", 0.2)
                run = system.api("POST", f"/workflows/{warm}/execute", {"input_data": {}}).json()
                system.run_wait(run["id"], timeout=60)
            for mode in modes:
                ok = bench_mode(system, args, mode, headers) and ok
        finally:
            system.stop()
    print("OK" if ok else "FAILED: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
