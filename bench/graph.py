"""How long the workflow graph (workflows/graph.py, drawn on the admin's workflow and run pages) takes
to draw at 200 steps, in three shapes: a chain, 199 nested loops, a parallel step of 199 children.

    .venv/bin/python bench/graph.py [--repeat 20] [--json]

Prints the median and the slowest drawing of each shape (target: 200 ms, so a big workflow's page
still opens at once). In-process, no database: drawing reads only the definition.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.common import figure, main_with_figures  # noqa: E402


def shapes(count: int = 200) -> dict[str, dict]:
    chain = {f"s{n}": {"id": f"s{n}", "agent_name": "A", "next_step": f"s{n + 1}"} for n in range(count)}
    chain[f"s{count - 1}"]["next_step"] = None
    nested = {
        f"s{n}": {"id": f"s{n}", "type": "loop", "loop_config": {"loop_body": [f"s{n + 1}"]}} for n in range(count - 1)
    }
    nested[f"s{count - 1}"] = {"id": f"s{count - 1}", "agent_name": "A"}
    wide = {"p": {"id": "p", "type": "parallel", "parallel_steps": [f"c{n}" for n in range(count - 1)]}}
    wide |= {f"c{n}": {"id": f"c{n}", "agent_name": "A"} for n in range(count - 1)}
    return {
        "chain": {"start_step": "s0", "steps": chain},
        "nested loops": {"start_step": "s0", "steps": nested},
        "wide parallel": {"start_step": "p", "steps": wide},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    import django

    django.setup()
    from workflows.graph import workflow_svg

    for name, definition in shapes().items():
        workflow_svg(definition)  # warm: imports and caches
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            workflow_svg(definition)
            times.append((time.perf_counter() - started) * 1000)
        print(f"{name} of 200 steps: median {statistics.median(times):.1f} ms, slowest {max(times):.1f} ms")
        figure(f"graph of 200 steps, {name}: slowest drawing", "<= 200 ms", max(times), "ms")
    return 0


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
