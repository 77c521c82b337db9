"""The shape of a plan as the executor walks it: which chain every step is in, and what follows it.

A chain is a list of steps run one after the other: the main chain (from `start_step` through
`next_step`), each parallel child and each conditional branch step (chains of one), a loop body (one
chain, run once per iteration) and each fork-join branch (its `steps`, in order). Every step is in
exactly one chain (validation guarantees it), so a step's id says where it runs; a loop iteration
or a fork-join branch adds a scope (see `iteration_scope`, `branch_scope`).

Derived from the pinned plan only, never from run state, so it is cached per workflow version.
"""

from dataclasses import dataclass

BLOCK_TYPES = ("parallel", "conditional", "loop", "fork_join")
ITERATION = "iteration"  # step_type of the row of one loop iteration
BRANCH = "branch"  # step_type of the row of one fork-join branch
SLOT_TYPES = (ITERATION, BRANCH)


@dataclass(frozen=True)
class Place:
    owner: str | None  # the block whose chain this is; None for the main chain
    kind: str  # "main", "parallel", "conditional", "loop" or "fork_join"
    branch: str | None = None  # the fork-join branch name


class Plan:
    def __init__(self, plan: dict):
        self.raw = plan
        self.steps: dict[str, dict] = plan["steps"]
        self.start: str = plan["start_step"]
        self.place: dict[str, Place] = {}
        self.next: dict[str, str | None] = {}
        for step_id, step in self.steps.items():
            kind = step.get("type") or "agent"
            if kind == "parallel":
                for child in step.get("parallel_steps") or []:
                    self._chain([child], Place(step_id, "parallel"))
            elif kind == "conditional":
                for child in (step.get("if_true_step"), step.get("if_false_step")):
                    if child:
                        self._chain([child], Place(step_id, "conditional"))
            elif kind == "loop":
                self._chain(step["loop_config"]["loop_body"], Place(step_id, "loop"))
            elif kind == "fork_join":
                for name, branch in step["fork_join_config"]["branches"].items():
                    self._chain(branch["steps"], Place(step_id, "fork_join", name))
        for step_id, step in self.steps.items():
            if step_id not in self.place:  # the main chain: next_step counts only here
                self.place[step_id] = Place(None, "main")
                self.next[step_id] = step.get("next_step")

    def _chain(self, ids: list[str], place: Place) -> None:
        for position, step_id in enumerate(ids):
            self.place[step_id] = place
            self.next[step_id] = ids[position + 1] if position + 1 < len(ids) else None

    def kind(self, step_id: str) -> str:
        return self.steps[step_id].get("type") or "agent"

    @staticmethod
    def of(plan: dict) -> "Plan":
        """A workflow version's plan never changes (versions are immutable), so its shape is cached."""
        workflow_id, version = plan.get("workflow_id"), plan.get("version")
        if workflow_id is None or version is None:
            return Plan(plan)
        cached = _CACHE.get((workflow_id, version))
        if cached is None:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            cached = _CACHE[(workflow_id, version)] = Plan(plan)
        return cached


_CACHE: dict[tuple, Plan] = {}
_CACHE_SIZE = 256


def iteration_scope(scope: str, loop_id: str, index: int) -> str:
    return f"{scope}/{loop_id}[{index}]" if scope else f"{loop_id}[{index}]"


def branch_scope(scope: str, fork_id: str, branch: str) -> str:
    return f"{scope}/{fork_id}:{branch}" if scope else f"{fork_id}:{branch}"


def enclosing_scopes(scope: str) -> list[str]:
    """The scope and every scope around it, innermost first: where a referenced step may have run."""
    parts = scope.split("/") if scope else []
    return ["/".join(parts[:length]) for length in range(len(parts), -1, -1)]
