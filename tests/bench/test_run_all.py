"""bench/run_all.py: the figures of repeated runs become one row each, judged on their median."""

import json
import subprocess
import sys

from bench.common import ROOT, target_met
from bench.run_all import combined, table


def test_targets_are_judged_from_their_text():
    assert target_met(">= 300 req/s", 301) is True
    assert target_met(">= 300 req/s", 299.9) is False
    assert target_met("<= 50 ms", 50) is True
    assert target_met("<= 3x", 3.2) is False
    assert target_met("< 10x", 9.9) is True
    assert target_met("", 5) is None
    assert target_met("<= 50 ms", None) is None


def test_repeated_runs_give_the_median_and_a_verdict_on_it():
    def run(rps, p99, ok=True):
        return [
            {"measure": "execute", "target": ">= 300 req/s", "measured": rps, "unit": "req/s", "met": rps >= 300},
            {"measure": "p99", "target": "<= 50 ms", "measured": p99, "unit": "ms", "met": p99 <= 50},
            {"measure": "runs", "target": ">= 500 steps/s", "measured": 600, "unit": "steps/s", "met": ok},
        ]

    rows = {row["measure"]: row for row in combined([run(280, 40), run(320, 70), run(310, 45, ok=False)])}
    assert rows["execute"]["measured"] == 310 and rows["execute"]["met"] is True
    assert rows["p99"]["measured"] == 45 and rows["p99"]["met"] is True
    assert rows["runs"]["met"] is False  # one run failed its checks: a good median does not hide it
    text = table([("engine", row) for row in rows.values()])
    assert "310 req/s (280, 320, 310)" in text and "MISSED" in text


def test_a_bench_prints_its_figures_as_the_last_line_with_json(tmp_path):
    script = tmp_path / "fake_bench.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from bench.common import figure, main_with_figures\n"
        "def main():\n"
        "    print('human output', sys.argv[1:])\n"
        "    figure('speed', '>= 10 req/s', 12.345, 'req/s')\n"
        "    return 0\n"
        "sys.exit(main_with_figures(main))\n"
    )
    done = subprocess.run([sys.executable, str(script), "--json", "--x"], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0] == "human output ['--x']"  # --json is taken off before the bench parses its arguments
    assert json.loads(lines[-1]) == [
        {"measure": "speed", "target": ">= 10 req/s", "measured": 12.35, "unit": "req/s", "met": True}
    ]
