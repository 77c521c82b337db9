"""Benchmark the executor's control-flow steps: big parallel loops, a fork-join, a wide parallel step.

What it measures. Items 1-4 run the whole system in processes, as `tests/support/system.py` starts
it (gunicorn, Celery worker + beat, executor, bridge, the embedded broker and the demo agent with
its instant ``echo`` skill) on a PostgreSQL database of its own; every run is started with
``POST /workflows/{id}/execute`` and timed from the run's ``created_at`` to its ``completed_at``.

    (1) a loop over 1,000 items, execution_mode parallel, max_parallelism 50, whose body is one agent
        step calling ``echo`` with ``${loop.item}``: completes? wall time; the executor's RSS (peak:
        VmHWM, reset before the run through /proc/<pid>/clear_refs, and at the end: VmRSS). Run
        ``--repeat`` times (its median is the ratio's denominator, so one noisy run cannot skew it).
    (2) the same over 10,000 items with max_parallelism 100: completes? wall time; its ratio to (1)
        (target: under the ratio of the sizes, 10x, i.e. linear); executor RSS (target: peak < 300 MB).
        Also the executor's CPU seconds for (2) against (1), which other load on the machine disturbs
        less than wall time, and the CPU every process of the system spent.
    (3) a fork-join of 20 branches x 5 agent steps each (join_policy all): wall time.
    (4) a parallel step of 100 agent children: wall time.
    (5) the executor's CPU per agent result early (around iteration 10) and late (around iteration
        9,000) of a 10,000-iteration loop (target: late within 2x of early). Measured in-process
        (the same code path, without the broker): a fresh database, the run created with the
        services (``run_execute``) and every message handed to ``runs.executor.Executor().handle``
        as tests/runs/test_blocks.py does, each agent task answered at once (FIFO, so 100 stay in
        flight); ``time.process_time()`` around each result's ``handle()``, the median (and the 10th
        percentile, the least disturbed by other processes) over 100 results from each point, with
        the queries each result took. As a cross-check from the whole-system run (2): the executor
        process's CPU (/proc/<pid>/stat, sampled every 0.1 s) divided by the results it recorded in
        a window of 500 results (step rows' ``completed_at``) early and late.

How to run (from the project root; PostgreSQL on 127.0.0.1:5432 with trust auth, or BENCH_DATABASE_URL)::

    .venv/bin/python bench/control_flow.py            # the sizes above (about 9 minutes on 2 cores)
    .venv/bin/python bench/control_flow.py --quick    # loops of 100 and 1,000 (5: 1,000), one run of 1, 3, 4

Other load on the machine shows in the wall times: the load average is printed before each loop,
and each run reports how many cores the whole machine had busy.

BENCH_KEEP=<folder> keeps the processes' logs there. The exit code is 1 when a run did not complete
(a target missed is reported, not an error).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    base_url,
    build_env,
    drop_database,
    figure,
    main_with_figures,
    recreate_database,
    run,
)

AGENT = "bench-echo"
RSS_TARGET_MB = 300
DECISION_TARGET = 2.0
WINDOW = 100  # results per in-process measuring point
MB = 1024 * 1024


# --------------------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM ... of a process, in bytes (empty when it is gone)."""
    found = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.startswith("Vm") and value.strip().endswith("kB"):
                found[key] = int(value.split()[0]) * 1024
    return found


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (gunicorn and Celery fork workers)."""
    total = proc_cpu(pid)
    with contextlib.suppress(OSError, ValueError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += tree_cpu(int(child))
    return 0.0 if math.isnan(total) else total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat (every process, ours or not)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / ticks, sum(values) / ticks


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def peak_reset(pid: int) -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0), so the peak of one run can be read on its own."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Samples a process's CPU seconds and RSS every `interval` seconds: (time.time(), cpu, rss)."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.time(), proc_cpu(self.pid), proc_status(self.pid).get("VmRSS", 0)))
            self.done.wait(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.samples.append((time.time(), proc_cpu(self.pid), proc_status(self.pid).get("VmRSS", 0)))

    def cpu_at(self, when: float) -> float:
        """The process's CPU seconds at `when`, interpolated between the samples around it."""
        samples = self.samples
        for (t0, c0, _), (t1, c1, _) in zip(samples, samples[1:], strict=False):
            if t0 <= when <= t1:
                return c0 + (c1 - c0) * ((when - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return samples[0][1] if when < samples[0][0] else samples[-1][1]

    def max_rss(self) -> int:
        return max((rss for _, _, rss in self.samples), default=0)


# --------------------------------------------------------------------------- workflows


def agent_step(step_id: str, text: str, next_step: str | None = None) -> dict:
    return {"id": step_id, "agent_name": AGENT, "input_mapping": {"text": text}, "next_step": next_step}


def loop_definition(name: str, parallelism: int) -> dict:
    loop = {
        "id": "each",
        "type": "loop",
        "loop_config": {
            "collection": "${workflow.input.items}",
            "loop_body": ["call"],
            "execution_mode": "parallel",
            "max_parallelism": parallelism,
            "on_error": "stop",
        },
        "next_step": None,
    }
    return {"name": name, "start_step": "each", "steps": {"each": loop, "call": agent_step("call", "${loop.item}")}}


def loop_input(size: int) -> dict:
    return {"items": [f"item-{index}" for index in range(size)]}


def fork_join_definition(name: str, branches: int, length: int) -> dict:
    steps, config = {}, {}
    for b in range(branches):
        ids = [f"b{b}s{s}" for s in range(length)]
        config[f"branch{b}"] = {"steps": ids}
        for s, step_id in enumerate(ids):
            steps[step_id] = agent_step(
                step_id, "${workflow.input.text}" if s == 0 else f"${{{ids[s - 1]}.output.text}}"
            )
    steps["fan"] = {
        "id": "fan",
        "type": "fork_join",
        "fork_join_config": {"branches": config, "join_policy": "all"},
        "next_step": None,
    }
    return {"name": name, "start_step": "fan", "steps": steps}


def parallel_definition(name: str, children: int) -> dict:
    ids = [f"c{index}" for index in range(children)]
    steps = {step_id: agent_step(step_id, "${workflow.input.text}") for step_id in ids}
    steps["all"] = {"id": "all", "type": "parallel", "parallel_steps": ids, "next_step": None}
    return {"name": name, "start_step": "all", "steps": steps}


# --------------------------------------------------------------------------- one run of the whole system


@dataclass
class Measured:
    label: str
    run_id: str = ""
    status: str = "NOT STARTED"
    seconds: float = float("nan")  # created_at -> completed_at, as the database recorded them
    client_seconds: float = float("nan")  # from before the POST to seeing the run finished
    agent_steps: int = 0
    rss_before: int = 0
    rss_peak: int = 0  # VmHWM since the reset before the run
    rss_peak_sampled: int = 0
    rss_end: int = 0
    agent_rows: int = 0  # every agent step row, any status (more than expected: retries or duplicates)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process during the run
    machine_busy: float = float("nan")  # cores busy on average during the run (every process on the machine)
    error: str = ""
    sampler: Sampler | None = None
    completions: list[float] = field(default_factory=list)  # agent steps' completed_at (epoch), in order
    dispatch_gaps: list[float] = field(default_factory=list)  # per result: completed_at -> next dispatch (ms)

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED"


class Bench:
    def __init__(self, system, args):
        self.system, self.args = system, args
        import psycopg

        self.db = psycopg.connect(system.database_url, autocommit=True)
        self.executor_pid = system.processes["executor"].popen.pid

    def workflow(self, definition: dict) -> str:
        response = self.system.api("POST", "/workflows", definition)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def query(self, sql: str, *params):
        return self.db.execute(sql, params).fetchall()

    def agent_steps_done(self, run_id: str) -> int:
        sql = (
            "SELECT count(*) FROM runs_stepexecution WHERE run_id = %s AND step_type = 'agent' AND status = 'COMPLETED'"
        )
        return self.query(sql, run_id)[0][0]

    def execute(self, label: str, workflow_id: str, input_data: dict, expected: int, *, timeout: float) -> Measured:
        """Starts a run through the API and waits for it, printing progress; gives up when it stalls."""
        measured = Measured(label)
        pid = self.executor_pid
        measured.rss_before = proc_status(pid).get("VmRSS", 0)
        cpu_before, machine_before = self.cpu_snapshot(), machine_cpu()
        peak_reset(pid)
        sampler = measured.sampler = Sampler(pid)
        sampler.start()
        began = time.monotonic()
        response = self.system.api("POST", f"/workflows/{workflow_id}/execute", {"input_data": input_data})
        if response.status_code != 202:
            sampler.stop()
            measured.error = f"execute answered {response.status_code}: {response.text[:500]}"
            return measured
        measured.run_id = run_id = response.json()["id"]
        last_count, last_change, last_print = -1, time.monotonic(), time.monotonic()
        status = "PENDING"
        while True:
            status = self.query("SELECT status FROM runs_run WHERE id = %s", run_id)[0][0]
            now = time.monotonic()
            if status in ("COMPLETED", "FAILED", "CANCELLED"):
                measured.client_seconds = now - began
                break
            if now - last_print >= 15 or now - last_change >= 5:
                count = self.agent_steps_done(run_id)
                if count != last_count:
                    last_count, last_change = count, now
                if now - last_print >= 15:
                    rss = proc_status(pid).get("VmRSS", 0) / MB
                    print(
                        f"    ... {now - began:.0f} s: {count:,} of {expected:,} agent steps done, "
                        f"executor RSS {rss:.0f} MB"
                    )
                    last_print = now
            if now - last_change > self.args.stall:
                measured.error = f"no agent step completed for {self.args.stall:.0f} s ({last_count:,} of {expected:,})"
                break
            if now - began > timeout:
                measured.error = f"not finished after {timeout:.0f} s ({last_count:,} of {expected:,} agent steps)"
                break
            time.sleep(0.2)
        sampler.stop()
        status_now = proc_status(pid)
        measured.rss_peak, measured.rss_end = status_now.get("VmHWM", 0), status_now.get("VmRSS", 0)
        measured.rss_peak_sampled = sampler.max_rss()
        measured.status = status
        row = self.query(
            "SELECT extract(epoch FROM completed_at - created_at), error_message FROM runs_run WHERE id = %s", run_id
        )[0]
        if status in ("COMPLETED", "FAILED", "CANCELLED") and row[0] is not None:
            measured.seconds = float(row[0])
        if status != "COMPLETED" and not measured.error:
            measured.error = row[1] or status
        measured.agent_steps = self.agent_steps_done(run_id)
        sql = "SELECT count(*) FROM runs_stepexecution WHERE run_id = %s AND step_type = 'agent'"
        measured.agent_rows = self.query(sql, run_id)[0][0]
        cpu_after, machine_after = self.cpu_snapshot(), machine_cpu()
        measured.cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        busy, total = (after - before for after, before in zip(machine_after, machine_before, strict=True))
        measured.machine_busy = busy / total * (os.cpu_count() or 1) if total else float("nan")
        if not measured.completed:
            print(f"    {label}: run {run_id} is {status}: {measured.error}")
            self.trail(run_id)
        return measured

    def cpu_snapshot(self) -> dict[str, float]:
        return {name: tree_cpu(p.popen.pid) for name, p in self.system.processes.items() if p.alive()}

    def log_problems(self) -> list[str]:
        """WARNING / ERROR lines in the logs of the executor and the bridge (the quiet ones are fine)."""
        found = []
        for name in ("executor", "bridge", "worker"):
            process = self.system.processes.get(name)
            if process is None or not process.log_path.exists():
                continue
            for line in process.log_path.read_text(errors="replace").splitlines():
                if " WARNING " in line or " ERROR " in line or "Traceback" in line:
                    found.append(f"{name}: {line[:240]}")
        return found

    def trail(self, run_id: str) -> None:
        """What the run and the processes said last, after a failure."""
        entries = self.query(
            "SELECT timestamp, source, level, message FROM runs_runlog WHERE run_id = %s ORDER BY id DESC LIMIT 15",
            run_id,
        )
        for timestamp, source, level, message in reversed(entries):
            print(f"      {timestamp:%H:%M:%S.%f} {source} {level} {message[:200]}")
        print("\n".join("      " + line for line in self.system.logs().splitlines()))

    def timings(self, measured: Measured) -> None:
        """Each agent result's completed_at, and the gap from it to the dispatch it caused (row timestamps)."""
        rows = self.query(
            "SELECT extract(epoch FROM started_at), extract(epoch FROM completed_at) FROM runs_stepexecution"
            " WHERE run_id = %s AND step_type = 'agent' AND status = 'COMPLETED'",
            measured.run_id,
        )
        starts = sorted(float(s) for s, _ in rows)
        ends = sorted(float(c) for _, c in rows)
        measured.completions = ends
        # The executor handles results one at a time; the first dispatch after a result was recorded
        # (and before the next result) is the next iteration it started in the same transaction.
        gaps, position = [], 0
        for index, end in enumerate(ends):
            following = ends[index + 1] if index + 1 < len(ends) else float("inf")
            while position < len(starts) and starts[position] <= end:
                position += 1
            if position < len(starts) and starts[position] < following:
                gaps.append((starts[position] - end) * 1000)
            else:
                gaps.append(float("nan"))
        measured.dispatch_gaps = gaps


# --------------------------------------------------------------------------- reporting


def mb(value: int) -> str:
    return f"{value / MB:.0f} MB"


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def loop_report(number: str, measured: Measured, size: int, parallelism: int) -> None:
    print(f"({number}) loop of {size:,} iterations, parallel, max_parallelism {parallelism}:")
    done = "completed" if measured.completed else f"DID NOT COMPLETE ({measured.status}: {measured.error})"
    print(f"    {done}; {measured.agent_steps:,} agent steps completed")
    if measured.completed:
        print(
            f"    wall time execute -> COMPLETED: {measured.seconds:.2f} s (run created_at -> completed_at; "
            f"{measured.client_seconds:.2f} s as the client saw it); {size / measured.seconds:.0f} iterations/s"
        )
    print(
        f"    executor RSS: before {mb(measured.rss_before)}, peak {mb(measured.rss_peak)} (VmHWM; sampled max "
        f"{mb(measured.rss_peak_sampled)}), at the end {mb(measured.rss_end)}"
    )
    if measured.completed and measured.cpu.get("executor"):
        per = measured.cpu["executor"] * 1000 / size
        print(f"    executor CPU: {measured.cpu['executor']:.1f} s, {per:.2f} ms per iteration")
    if measured.agent_rows != size:
        print(f"    {measured.agent_rows:,} agent step rows for {size:,} iterations (retries or duplicates)")
    cpu_report(measured)


def cpu_report(measured: Measured) -> None:
    spent = ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(measured.cpu.items(), key=lambda kv: -kv[1]))
    print(
        f"    CPU seconds during the run: {spent}; the machine had {measured.machine_busy:.2f} of "
        f"{os.cpu_count()} cores busy on average (PostgreSQL and anything else running included)"
    )


def block_report(number: str, what: str, runs: list[Measured]) -> None:
    times = [m.seconds for m in runs if m.completed]
    print(f"({number}) {what}: {len(times)} of {len(runs)} runs completed")
    for m in runs:
        if not m.completed:
            print(f"    run {m.run_id or '-'} {m.status}: {m.error}")
    if times:
        listed = ", ".join(f"{t:.2f}" for t in times)
        print(f"    wall time execute -> COMPLETED: {listed} s (median {statistics.median(times):.2f} s)")


def window_cpu(measured: Measured, start: int, count: int) -> tuple[float, float] | None:
    """Executor CPU ms per result over results [start, start+count) of a whole-system run, and the window's seconds."""
    ends = measured.completions
    if measured.sampler is None or len(ends) < start + count + 1:
        return None
    t0, t1 = ends[start], ends[start + count]
    cpu = measured.sampler.cpu_at(t1) - measured.sampler.cpu_at(t0)
    return cpu * 1000 / count, t1 - t0


def median_of(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- the whole system


def whole_system(args, sizes) -> tuple[bool, list[str], list[tuple[str, float, float, float]]]:
    """Items 1-4 and the cross-check of 5. Returns (all completed, summary lines, cross-check windows)."""
    from tests.support.system import System

    os.environ["DATABASE_URL"] = f"{base_url()}/postgres"  # System creates a database of its own on this server
    extra = {"LOG_LEVEL": "WARNING", "EXECUTOR_LEASE_SECONDS": "60", "RUN_RECOVERY_SECONDS": "10"}
    keep = os.environ.get("BENCH_KEEP")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
    summary, ok, windows, bench = [], True, [], None
    with contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory() as tmp:
        system = System(Path(tmp), extra_env=extra, web_workers=args.web_workers)
        started = time.monotonic()
        try:
            system.start()
            print(f"system up in {time.monotonic() - started:.1f} s (database {system.database_url.rsplit('/', 1)[1]})")
            response = system.api(
                "POST",
                "/agents",
                {"name": AGENT, "url": f"{system.agent_url}/echo", "retry_config": {"max_retries": 0}},
            )
            assert response.status_code == 201, response.text
            bench = Bench(system, args)
            small, large = sizes["small"], sizes["large"]
            loops = {
                p: bench.workflow(loop_definition(f"bench-loop-{p}", p)) for p in {small[1], large[1], sizes["warm"][1]}
            }
            warm = bench.execute(
                "warm-up", loops[sizes["warm"][1]], loop_input(sizes["warm"][0]), sizes["warm"][0], timeout=120
            )
            print(f"warm-up loop of {sizes['warm'][0]}: {warm.status} in {warm.seconds:.2f} s")
            ok = warm.completed

            timeout = max(120.0, small[0] * args.seconds_per_iteration)
            ones = []
            for number in range(args.repeat):  # short enough to repeat: its time is the ratio's denominator
                print(f"load average {load_average()}")
                ones.append(bench.execute("(1)", loops[small[1]], loop_input(small[0]), small[0], timeout=timeout))
                loop_report(f"1.{number + 1}" if args.repeat > 1 else "1", ones[-1], *small)
            ok = ok and all(m.completed for m in ones)
            done = [m for m in ones if m.completed]
            one_seconds = statistics.median(m.seconds for m in done) if done else float("nan")
            one_cpu = statistics.median(m.cpu.get("executor", 0.0) for m in done) if done else float("nan")
            if args.repeat > 1 and done:
                print(f"(1) median wall time of {len(done)} runs: {one_seconds:.2f} s, executor CPU {one_cpu:.1f} s")

            timeout = max(120.0, large[0] * args.seconds_per_iteration)
            print(f"load average {load_average()}")
            two = bench.execute("(2)", loops[large[1]], loop_input(large[0]), large[0], timeout=timeout)
            loop_report("2", two, *large)
            ok = ok and two.completed
            linear = large[0] / small[0]
            if done and two.completed:
                ratio = two.seconds / one_seconds
                line = f"(2) time ratio to (1): {ratio:.2f}x for {linear:.0f}x the iterations (target: < {linear:.0f}x)"
                print(f"    {line[4:]}  {verdict(ratio < linear)}")
                figure(f"control flow: {linear:.0f}x the loop iterations, time ratio", f"< {linear:.0f}x", ratio, "x")
                summary.append(f"{line}  {verdict(ratio < linear)}")
                cpu_ratio = two.cpu.get("executor", 0.0) / one_cpu if one_cpu else float("nan")
                line = f"(2) executor CPU ratio to (1): {cpu_ratio:.2f}x (less sensitive than wall time to other load)"
                print(f"    {line[4:]}")
                summary.append(line)
            else:
                summary.append("(2) time ratio to (1): n/a (a loop did not complete)  MISSES target")
            rss_ok = two.rss_peak < RSS_TARGET_MB * MB
            print(f"    executor peak RSS {mb(two.rss_peak)} (target: < {RSS_TARGET_MB} MB)  {verdict(rss_ok)}")
            figure("control flow: executor peak RSS", f"< {RSS_TARGET_MB} MB", two.rss_peak / MB, "MB")
            summary.append(
                f"(2) executor peak RSS {mb(two.rss_peak)} (target: < {RSS_TARGET_MB} MB)  {verdict(rss_ok)}"
            )

            if two.run_id:
                bench.timings(two)
                count = max(WINDOW, large[0] // 20)
                late_at = min(int(large[0] * 0.9), large[0] - large[1] - count)
                for name, at in (("early", 10), ("late", late_at)):
                    found = window_cpu(two, at, count)
                    if found is not None:
                        gaps = two.dispatch_gaps[at : at + count]
                        windows.append((f"{name}: results {at:,}-{at + count - 1:,}", *found, median_of(gaps)))

            branches, length = sizes["fork"]
            fork_id = bench.workflow(fork_join_definition("bench-fork-join", branches, length))
            forks = [
                bench.execute("(3)", fork_id, {"text": "x"}, branches * length, timeout=120) for _ in range(args.repeat)
            ]
            block_report("3", f"fork-join of {branches} branches x {length} agent steps (join_policy all)", forks)
            ok = ok and all(m.completed for m in forks)

            children = sizes["parallel"]
            parallel_id = bench.workflow(parallel_definition("bench-parallel", children))
            parallels = [
                bench.execute("(4)", parallel_id, {"text": "x"}, children, timeout=120) for _ in range(args.repeat)
            ]
            block_report("4", f"parallel step of {children} agent children", parallels)
            ok = ok and all(m.completed for m in parallels)
            problems = bench.log_problems()
            print(f"warnings and errors in the executor, bridge and worker logs: {len(problems)}")
            for line in problems[:10]:
                print(f"    {line}")
        finally:
            if bench is not None:
                bench.db.close()
            system.stop()
    return ok, summary, windows


# --------------------------------------------------------------------------- item 5, in-process


def in_process_measure(size: int, parallelism: int, late_at: int) -> int:
    """Runs in a subprocess whose DATABASE_URL is a fresh, migrated database (see `in_process`)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from collections import deque

    from django.conf import settings
    from django.db import connection

    from agents.models import Agent
    from core.models import OutboxMessage
    from runs.executor import Executor
    from runs.models import Run
    from runs.services import run_execute
    from workflows.services import workflow_create

    Agent.objects.create(name=AGENT, url="http://127.0.0.1:1/echo")
    workflow = workflow_create(user=None, definition=loop_definition("bench-loop-in-process", parallelism))
    run = run_execute(workflow=workflow, input_data=loop_input(size), user=None)
    executor = Executor()
    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    def tasks(sent) -> list[dict]:
        return [m.payload for m in sent if m.topic == settings.KAFKA_TASKS_TOPIC]

    request = OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id)).latest("id")
    with connection.execute_wrapper(count):
        cpu, wall = time.process_time(), time.perf_counter()
        queue = deque(tasks(executor.handle(settings.KAFKA_EXECUTION_TOPIC, json.dumps(request.payload).encode())))
        start_cpu, start_wall, start_queries = time.process_time() - cpu, time.perf_counter() - wall, queries[0]
        measured: list[tuple[int, float, float, int]] = []  # (iteration, cpu s, wall s, queries) per result
        began = time.perf_counter()
        while queue:
            task = queue.popleft()
            message = {
                "run_id": task["run_id"],
                "task_id": task["task_id"],
                "correlation_id": task["correlation_id"],
                "status": "SUCCESS",
                "output_data": task["input_data"],  # the echo skill
                "error_message": None,
                "timestamp": "2026-01-01T00:00:00Z",
                "duration_ms": 1,
            }
            raw = json.dumps(message).encode()
            before_queries = queries[0]
            cpu, wall = time.process_time(), time.perf_counter()
            sent = executor.handle(settings.KAFKA_RESULTS_TOPIC, raw)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            iteration = int(str(task["input_data"]["text"]).rsplit("-", 1)[1])
            measured.append((iteration, cpu, wall, queries[0] - before_queries))
            queue.extend(tasks(sent))
        total = time.perf_counter() - began
    run = Run.objects.get(pk=run.pk)
    print(f"    in-process run: {run.status}, {len(measured):,} results handled in {total:.1f} s")
    print(
        f"    the execution request (creates {size:,} iteration rows, starts {parallelism}): "
        f"{start_cpu * 1000:.0f} ms CPU, {start_wall * 1000:.0f} ms wall, {start_queries} queries"
    )
    by_iteration = {iteration: (c, w, q) for iteration, c, w, q in measured}

    def point(at: int) -> dict:
        picked = [by_iteration[i] for i in range(at, at + WINDOW) if i in by_iteration]
        cpu = sorted(v[0] * 1000 for v in picked)
        return {
            "from": at,
            "to": at + WINDOW - 1,
            "cpu": statistics.median(cpu),
            "cpu_p10": cpu[len(cpu) // 10],  # the least disturbed by other processes (noise only adds)
            "wall": statistics.median(v[1] * 1000 for v in picked),
            "queries": statistics.median(v[2] for v in picked),
        }

    print("    per result, median over buckets of iterations (CPU ms / wall ms / queries):")
    bucket = max(1, size // 10)
    for low in range(0, size, bucket):
        picked = [v for i, v in by_iteration.items() if low <= i < low + bucket]
        if picked:
            cpu_ms = statistics.median(v[0] for v in picked) * 1000
            wall_ms = statistics.median(v[1] for v in picked) * 1000
            print(
                f"      {low:>6,}-{low + bucket - 1:<6,} {cpu_ms:6.2f} / {wall_ms:6.2f} / "
                f"{statistics.median(v[2] for v in picked):.0f}"
            )
    print("RESULT " + json.dumps({"early": point(10), "late": point(late_at), "status": run.status}))
    return 0 if run.status == "COMPLETED" else 1


def in_process(size: int, parallelism: int, late_at: int) -> tuple[bool, dict | None]:
    """Item 5 in-process: a database of its own, migrated, then `--in-process` in a subprocess."""
    name = f"bench_control_flow_{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        env = build_env(f"{base_url()}/{name}")
        env.update({"DATA_DIR": tmp, "CELERY_BROKER_URL": "filesystem://", "KAFKA_BOOTSTRAP_SERVERS": ""})
        env.pop("REDIS_URL", None)
        recreate_database(name)
        try:
            run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env, "migrate")
            command = [sys.executable, __file__, "--in-process", str(size), str(parallelism), str(late_at)]
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        finally:
            drop_database(name)
    found = None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            found = json.loads(line.split(" ", 1)[1])
        else:
            print(line)
    if done.returncode or found is None:
        print(f"    the in-process measurement failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        return False, found
    return found["status"] == "COMPLETED", found


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="loops of 100 and 1,000; one run each of (3) and (4)")
    parser.add_argument("--repeat", type=int, default=None, help="runs of (1), (3) and (4) (default 3, 1 with --quick)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--stall", type=float, default=120, help="give up on a run after this long without progress")
    parser.add_argument(
        "--seconds-per-iteration", type=float, default=0.3, help="a loop's timeout: this x its iterations (min 120 s)"
    )
    parser.add_argument("--skip-system", action="store_true", help="only the in-process measurement (5)")
    parser.add_argument("--skip-in-process", action="store_true", help="only the whole-system items (1-4)")
    parser.add_argument("--in-process", nargs=3, type=int, help=argparse.SUPPRESS)  # the subprocess of item 5
    args = parser.parse_args()
    if args.in_process:
        return in_process_measure(*args.in_process)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    sizes = {
        "warm": (20, 10),
        "small": (100, 50) if args.quick else (1_000, 50),
        "large": (1_000, 100) if args.quick else (10_000, 100),
        "fork": (20, 5),
        "parallel": 100,
    }
    large = sizes["large"][0]
    # Around 90% of the loop, but with iterations still waiting, so each result also starts one.
    late_at = min(int(large * 0.9), large - sizes["large"][1] - WINDOW)
    print(
        f"control-flow benchmark ({'quick' if args.quick else 'full'} sizes), {os.cpu_count()} CPUs, "
        f"load average {load_average()}"
    )
    ok, summary, windows = True, [], []
    if not args.skip_system:
        ok, summary, windows = whole_system(args, sizes)
    found = None
    if not args.skip_in_process:
        if not args.skip_system:
            print(f"load average {load_average()}")
        print(
            f"(5) per-result decision time, in-process (runs.executor.Executor().handle, no broker; "
            f"loop of {large:,}, max_parallelism 100, instant answers):"
        )
        done, found = in_process(large, 100, late_at)
        ok = ok and done
        if found is not None:
            for name in ("early", "late"):
                p = found[name]
                print(
                    f"    {name} (iterations {p['from']:,}-{p['to']:,}): median {p['cpu']:.2f} ms CPU "
                    f"(10th percentile {p['cpu_p10']:.2f} ms), {p['wall']:.2f} ms wall, {p['queries']:.0f} queries"
                )
            ratio = found["late"]["cpu"] / found["early"]["cpu"]
            quiet = found["late"]["cpu_p10"] / found["early"]["cpu_p10"]
            line = (
                f"(5) late / early executor CPU per result (in-process): {ratio:.2f}x, 10th percentiles {quiet:.2f}x "
                f"(target: <= {DECISION_TARGET:g}x)  {verdict(ratio <= DECISION_TARGET)}"
            )
            print(f"    {line[4:]}")
            summary.append(line)
            figure("control flow: late / early executor CPU per result", f"<= {DECISION_TARGET:g}x", ratio, "x")
    if windows:
        print("(5) cross-check from the whole-system run (2): executor process CPU per result recorded")
        for name, cpu_ms, seconds, gap in windows:
            print(
                f"    {name}: {cpu_ms:.2f} ms CPU per result over {seconds:.1f} s; "
                f"median result-recorded -> next dispatch {gap:.2f} ms"
            )
        if len(windows) == 2 and windows[0][1]:
            ratio = windows[1][1] / windows[0][1]
            print(f"    late / early: {ratio:.2f}x")
            summary.append(f"(5) late / early executor CPU per result (whole system, cross-check): {ratio:.2f}x")
    print()
    print("summary")
    for line in summary:
        print(f"  {line}")
    print("OK: every run completed" if ok else "FAILED: a run did not complete (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
