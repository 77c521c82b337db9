"""What a step's references resolve against at run time: the run's input, the outputs of the steps
it may see (read from the database when a reference asks, so a decision never loads the whole run),
and the loop context of the innermost loop iteration it runs in."""

from collections.abc import Iterator, Mapping
from functools import cached_property

from runs.choices import StepStatus
from runs.models import StepExecution
from runs.plan import SLOT_TYPES, enclosing_scopes


class Outputs(Mapping):
    """{step_id: output} of the completed steps visible from `scope` (its own and every enclosing one)."""

    def __init__(self, run, scope: str, known: dict | None = None):
        """`known`: {step_id: output} of steps completed in `scope` itself in the run's current attempt,
        which the caller has in hand: what a lookup would find (the innermost scope comes first, and
        a step completes at most once per scope and attempt), without the query."""
        self.run = run
        self.scopes = enclosing_scopes(scope)
        self.found: dict[str, tuple[bool, object, str]] = {k: (True, v, "") for k, v in (known or {}).items()}

    def _look(self, step_id: str) -> tuple[bool, object, str]:
        if step_id not in self.found:
            rows = (
                StepExecution.objects.filter(run=self.run, scope__in=self.scopes, step_id=step_id)
                .exclude(step_type__in=SLOT_TYPES)
                .values_list("scope", "status", "output_data", "attempt", "try_number")
            )
            # The innermost scope first, then the newest attempt and try.
            ordered = sorted(rows, key=lambda r: (self.scopes.index(r[0]), -r[3], -r[4]))
            completed = next((r for r in ordered if r[1] == StepStatus.COMPLETED), None)
            if completed is not None:
                self.found[step_id] = (True, completed[2], "")
            else:
                status = ordered[0][1] if ordered else None
                self.found[step_id] = (False, None, status or "")
        return self.found[step_id]

    def __contains__(self, step_id) -> bool:
        return isinstance(step_id, str) and self._look(step_id)[0]

    def __getitem__(self, step_id):
        ok, output, _ = self._look(step_id)
        if not ok:
            raise KeyError(step_id)
        return output

    def __iter__(self) -> Iterator[str]:
        return iter(key for key, (ok, _, _) in self.found.items() if ok)

    def __len__(self) -> int:
        return sum(1 for ok, _, _ in self.found.values() if ok)

    def why_missing(self, step_id: str) -> str:
        status = self._look(step_id)[2]
        if status == StepStatus.SKIPPED:
            return f"step '{step_id}' was skipped (its conditional took the other branch)"
        if status:
            return f"step '{step_id}' has no output (it is {status})"
        return f"step '{step_id}' has no output (it has not run)"


def loop_context(slot, loop_row) -> dict:
    """`${loop.*}` inside the iteration whose row is `slot`, of the loop whose row is `loop_row`."""
    total = (loop_row.progress or {}).get("total", 0)
    index = slot.iteration
    return {
        "item": slot.input_data,
        "index": index,
        "total": total,
        "is_first": index == 0,
        "is_last": index == total - 1,
    }


class ReferenceContext:
    """`input`, `outputs` and `loop` for the resolver. The run's input is read only when a reference
    asks for it: it can be large (a loop's collection) and most loop body steps never need it."""

    def __init__(self, run, scope: str, loop: dict | None, known: dict | None = None):
        self.run = run
        self.outputs = Outputs(run, scope, known)
        self.loop = loop

    @cached_property
    def input(self):
        return self.run.input_data


def reference_context(run, scope: str, loop: dict | None, known: dict | None = None) -> ReferenceContext:
    return ReferenceContext(run, scope, loop, known)
