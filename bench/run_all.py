"""Runs every benchmark in bench/ and prints one table: measure, target, measured, met / missed.

Each benchmark runs as its own process with ``--json`` (bench/common.py: ``figure`` and
``main_with_figures``), which ends its output with its figures as one JSON line; its whole output
goes to a log file. The default sizes fit about 15-25 minutes on the 2-core development machine;
``--full`` runs each benchmark at its own (larger) defaults, which takes an hour or more.

    .venv/bin/python bench/run_all.py                     # everything, default sizes
    .venv/bin/python bench/run_all.py --only engine,sse   # some of them
    .venv/bin/python bench/run_all.py --repeat 3          # each 3 times: the table shows the medians
    .venv/bin/python bench/run_all.py --full --logs /tmp/bench-logs
    ./dev bench [the same options]

Benchmarks other sessions add (scale, scale_out, admin, admin_dashboard, admin_run_page) are run when their
file exists. PostgreSQL on
127.0.0.1:5432 with trust auth (or ``BENCH_DATABASE_URL``) and Redis on 127.0.0.1:6379 (the schedules
and webhooks benches use databases 12 and 15) are expected. The exit code is 1 when a benchmark failed
(its exit code, or no figures); a missed target is reported in the table only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, target_met  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Benchmark:
    name: str
    quick: list[str]  # the arguments of the default run (sized for the 15-25 minutes in all)
    full: list[str]  # the arguments of --full


# Read endpoints as issue 18 measures them: 2 gunicorn workers, 8 client connections.
READ_LOAD = ["--workers", "2", "--concurrency", "8"]
BENCHMARKS = [
    Benchmark("engine", ["--triggers", "1000", "--runs", "200"], []),
    Benchmark("agent_client", ["--calls", "2000"], []),
    Benchmark("agents_list", [*READ_LOAD, "--requests", "500"], [*READ_LOAD, "--requests", "2000"]),
    Benchmark(
        "workflows_audit",
        [*READ_LOAD, "--requests", "300", "--audit-rows", "10000"],
        [*READ_LOAD, "--requests", "1000"],
    ),
    Benchmark("idempotency", [], ["--rounds", "4"]),
    Benchmark("control_flow", ["--quick"], []),
    Benchmark("long_tasks", ["--runs", "100"], ["--runs", "500"]),
    Benchmark("schedules", ["--minutes", "1"], []),
    Benchmark("sse", [], ["--streams", "2000"]),
    Benchmark("webhooks", [], ["--changes", "5000"]),
    # Added by other sessions; run only when present. scale: 1 million runs by default here, its own
    # 10 million with --full (generating them takes long; it keeps its database for the next time).
    Benchmark("scale", ["--runs", "1000000"], []),
    Benchmark("scale_out", [], []),
    Benchmark("admin", [], []),
    Benchmark("admin_dashboard", [], []),
    Benchmark("admin_run_page", [], []),
    Benchmark("graph", [], []),
]


def run_one(bench: Benchmark, args: list[str], log: Path, timeout: float) -> tuple[int | str, list[dict], float]:
    """(exit code or "timeout", figures, seconds); the output goes to `log`."""
    command = [sys.executable, "-u", str(HERE / f"{bench.name}.py"), *args, "--json"]
    started = time.monotonic()
    with log.open("w") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        # A session of its own: on a timeout the bench's own processes (servers, workers) go with it.
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            code = "timeout"
    elapsed = time.monotonic() - started
    figures = []
    # The last JSON list in the output (a traceback may follow it when the bench failed midway).
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("[{") or line == "[]":
            try:
                figures = json.loads(line)
                break
            except ValueError:
                continue
    return code, figures, elapsed


def combined(runs: list[list[dict]]) -> list[dict]:
    """One row per measure over repeated runs: the median value, met judged on it. A run whose bench
    said "missed" although its value meets the target (its runs did not all complete, say) makes the
    row missed whatever the median."""
    rows: dict[str, dict] = {}
    for figures in runs:
        for item in figures:
            row = rows.setdefault(item["measure"], {**item, "values": [], "vetoed": False, "mets": []})
            if item["measured"] is not None:
                row["values"].append(item["measured"])
            row["mets"].append(item["met"])
            if item["met"] is False and target_met(item["target"], item["measured"]) is not False:
                row["vetoed"] = True
    for row in rows.values():
        values = row["values"]
        row["measured"] = statistics.median(values) if values else None
        judged = target_met(row["target"], row["measured"])
        if judged is None:  # a target the text does not say how to judge: met only if every run met it
            given = [m for m in row["mets"] if m is not None]
            judged = all(given) if given else None
        row["met"] = False if row["vetoed"] else judged
    return list(rows.values())


def number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")


def table(rows: list[tuple[str, dict]]) -> str:
    lines = [("bench", "measure", "target", "measured", "")]
    for bench, row in rows:
        measured = f"{number(row['measured'])} {row.get('unit', '')}".strip()
        if len(row.get("values", [])) > 1:
            measured += f" ({', '.join(number(v) for v in row['values'])})"
        verdict = {True: "met", False: "MISSED", None: "-"}[row["met"]]
        lines.append((bench, row["measure"], row["target"] or "-", measured, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    text = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    parser.add_argument("--full", action="store_true", help="each benchmark at its own, larger, default sizes")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each benchmark; the table shows medians")
    parser.add_argument("--logs", default=None, help="folder for the benchmarks' output (default: a new temp one)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one benchmark run may take")
    parser.add_argument("--json", action="store_true", help="also print the table's rows as JSON at the end")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    skip = {name for name in args.skip.split(",") if name}
    unknown = (only | skip) - {b.name for b in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    logs = Path(args.logs or tempfile.mkdtemp(prefix="bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"logs in {logs}", flush=True)

    rows: list[tuple[str, dict]] = []
    failed: list[str] = []
    started = time.monotonic()
    for bench in BENCHMARKS:
        if (only and bench.name not in only) or bench.name in skip:
            continue
        if not (HERE / f"{bench.name}.py").exists():
            print(f"{bench.name}: not here (bench/{bench.name}.py), skipped", flush=True)
            continue
        runs = []
        for attempt in range(1, args.repeat + 1):
            log = logs / f"{bench.name}-{attempt}.log"
            code, figures, seconds = run_one(bench, bench.full if args.full else bench.quick, log, args.timeout)
            print(f"{bench.name} #{attempt}: exit {code}, {len(figures)} figures, {seconds:.0f} s ({log})", flush=True)
            if code != 0 or not figures:
                failed.append(f"{bench.name} #{attempt}")
            runs.append(figures)
        rows += [(bench.name, row) for row in combined(runs)]
        if not any(runs):
            rows.append(
                (bench.name, {"measure": "(no figures: see its log)", "target": "", "measured": None, "met": None})
            )

    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s\n")
    print(table(rows))
    met = sum(1 for _, row in rows if row["met"] is True)
    missed = sum(1 for _, row in rows if row["met"] is False)
    print(f"\n{met} met, {missed} missed" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if args.json:
        print(
            json.dumps(
                [
                    {"bench": bench, **{k: v for k, v in row.items() if k not in ("mets", "vetoed")}}
                    for bench, row in rows
                ]
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
