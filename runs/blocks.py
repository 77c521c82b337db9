"""The four block types (workflow-format.md), as a mixin of the Decider (runs/decider.py).

Each type has `<type>_begin` (the block's row exists and is RUNNING; start what can start) and
`<type>_child_done` (one child, loop iteration or branch has finished), both returning the block's
Outcome: still waiting, or decided. Counters live in the block row's `progress`, so a decision
reads a few rows whatever the number of iterations. Children that finish at once (reused from an
earlier attempt, or failing at dispatch) are folded in on the spot, never reported upward twice.
"""

from django.utils import timezone

from runs.choices import LogSource, StepStatus
from runs.models import StepExecution
from runs.outcome import WAITING, Outcome
from runs.plan import BRANCH, ITERATION, SLOT_TYPES, branch_scope, iteration_scope
from runs.services import monitoring_publish, run_log, step_transition
from workflows.definition.expressions import ExpressionError, evaluate
from workflows.definition.references import UnresolvedReference, json_type, resolve_reference, resolve_value

SOURCE = LogSource.EXECUTOR
COMPLETED, FAILED, PENDING = StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.PENDING


class Blocks:
    # -- shared ----------------------------------------------------------------------------------

    def block_begin(self, step_id: str, kind: str, *, scope: str, parent) -> Outcome:
        step = self.plan.steps[step_id]
        block = self.new_row(step_id, scope=scope, parent=parent, step_type=kind)
        self.row_start(block, due_seconds=step.get("timeout_seconds"))
        run_log(self.run, f"Step '{step_id}' ({kind}) started", source=SOURCE, step_id=step_id, data=self.where(block))
        decided = getattr(self, f"{kind}_begin")(block, step)
        if not decided.finished:
            block.save(update_fields=["progress"])
            return WAITING
        self.row_finish(block, decided)
        if decided.status == FAILED:
            return Outcome(FAILED, error=self.failure(block))
        return decided

    def block_child_done(self, block, child, outcome: Outcome) -> Outcome:
        step = self.plan.steps[block.step_id]
        decided = getattr(self, f"{block.step_type}_child_done")(block, step, child, outcome)
        if not decided.finished:
            block.save(update_fields=["progress"])
        return decided

    def latest_outputs(self, rows) -> dict:
        """{key: output} of the newest COMPLETED row per key, from (key, status, output, attempt) tuples."""
        best: dict = {}
        for key, status, output, attempt in rows:
            if status == COMPLETED and (key not in best or attempt > best[key][0]):
                best[key] = (attempt, output)
        return {key: output for key, (_, output) in best.items()}

    def skip(self, step_id: str, block) -> None:
        """The branch a conditional did not take: recorded SKIPPED, so it is visible and never runs."""
        row = self.new_row(step_id, scope=block.scope, parent=block, step_type=self.plan.kind(step_id))
        step_transition(row, StepStatus.SKIPPED, run=self.run)
        row.started_at = timezone.now()
        row.end_at(row.started_at)
        row.save()
        self.remember(row)
        monitoring_publish(self.run, status=StepStatus.SKIPPED, step_id=step_id, metadata=self.where(row))

    # -- parallel --------------------------------------------------------------------------------

    def parallel_begin(self, block, step) -> Outcome:
        children = list(step["parallel_steps"])
        block.progress = {"pending": children, "total": len(children), "running": 0, "done": 0, "error": ""}
        return self.parallel_pump(block, step)

    def parallel_pump(self, block, step) -> Outcome:
        progress = block.progress
        limit = step.get("max_parallelism") or progress["total"]
        while progress["pending"] and progress["running"] < limit and not progress["error"]:
            child = progress["pending"].pop(0)
            self.parallel_fold(block, self.walk_chain(child, scope=block.scope, parent=block))
        progress = block.progress
        if progress["error"]:
            self.cancel_below(block, f"Cancelled: another step of parallel step '{block.step_id}' failed")
            return Outcome(FAILED, error=progress["error"])
        if progress["done"] == progress["total"]:
            rows = self.run.steps.filter(scope=block.scope, step_id__in=step["parallel_steps"])
            found = rows.exclude(step_type__in=SLOT_TYPES).values_list("step_id", "status", "output_data", "attempt")
            outputs = self.latest_outputs(found)
            return Outcome(COMPLETED, {child: outputs.get(child) for child in step["parallel_steps"]})
        return WAITING

    def parallel_fold(self, block, outcome: Outcome) -> None:
        progress = block.progress
        if outcome.status == COMPLETED:
            progress["done"] += 1
        elif outcome.status == FAILED:
            progress["error"] = progress["error"] or outcome.error
        else:
            progress["running"] += 1

    def parallel_child_done(self, block, step, child, outcome: Outcome) -> Outcome:
        block.progress["running"] -= 1
        self.parallel_fold(block, outcome)
        return self.parallel_pump(block, step)

    # -- conditional -----------------------------------------------------------------------------

    def conditional_begin(self, block, step) -> Outcome:
        expression = step["condition"]["expression"]
        context = self.context(block.scope, self.row(block.parent_id))
        try:
            value = evaluate(expression, lambda reference: resolve_reference(reference, context))
        except (ExpressionError, UnresolvedReference) as exc:
            # Never a silent else branch: a condition that cannot be evaluated fails the step.
            return Outcome(FAILED, error=f"the condition {expression!r} cannot be evaluated: {exc}")
        result = bool(value)
        taken, other = (step["if_true_step"], step["if_false_step"])[:: 1 if result else -1]
        block.progress = {"condition_result": result, "branch_taken": "then" if result else "else"}
        block.progress["branch_step_id"] = taken
        run_log(
            self.run,
            f"Condition of step '{block.step_id}' is {str(result).lower()}: "
            + (f"running step '{taken}'" if taken else "no step on this branch"),
            source=SOURCE,
            step_id=block.step_id,
            data={"expression": expression, **self.where(block)},
        )
        if other:
            self.skip(other, block)
        if not taken:
            return Outcome(COMPLETED, {**block.progress, "branch_output": None})
        return self.conditional_settle(block, self.walk_chain(taken, scope=block.scope, parent=block))

    def conditional_child_done(self, block, step, child, outcome: Outcome) -> Outcome:
        return self.conditional_settle(block, outcome)

    def conditional_settle(self, block, outcome: Outcome) -> Outcome:
        if outcome.status == COMPLETED:
            return Outcome(COMPLETED, {**block.progress, "branch_output": outcome.output})
        return outcome

    # -- loop ------------------------------------------------------------------------------------

    def loop_slots(self, block):
        """The iteration rows of this loop (this block, in every attempt of the run)."""
        prefix = iteration_scope(block.scope, block.step_id, 0)[:-2]  # "<scope>/<loop>["
        return self.run.steps.filter(step_id=block.step_id, step_type=ITERATION, scope__startswith=prefix)

    def loop_begin(self, block, step) -> Outcome:
        config = step["loop_config"]
        context = self.context(block.scope, self.row(block.parent_id))
        try:
            items = resolve_value(config["collection"], context)
        except UnresolvedReference as exc:
            return Outcome(FAILED, error=f"cannot resolve the collection: {exc}")
        if not isinstance(items, list):
            kind = json_type(items)
            article = "an" if kind[0] in "aeiou" else "a"
            return Outcome(FAILED, error=f"the collection {config['collection']} is {article} {kind}, not an array")
        limit = config.get("max_iterations")
        if limit is not None and len(items) > limit:
            return Outcome(FAILED, error=f"the collection has {len(items)} items, more than max_iterations ({limit})")
        done: set[int] = set()
        if self.run.attempt > 1:  # a retry: iterations completed before are not run again
            rows = self.loop_slots(block).values_list("iteration", "status", "output_data", "attempt")
            done = set(self.latest_outputs(rows))
        slots = []
        for index, item in enumerate(items):
            if index in done:
                continue
            slot = self.new_row(
                block.step_id,
                scope=iteration_scope(block.scope, block.step_id, index),
                parent=block,
                step_type=ITERATION,
                iteration=index,
                input_data=item,
            )
            step_transition(slot, PENDING, run=self.run)
            slots.append(slot)
        StepExecution.objects.bulk_create(slots, batch_size=1000)
        block.progress = {"total": len(items), "running": 0, "done": len(done), "failed": 0, "error": ""}
        run_log(
            self.run,
            f"Loop '{block.step_id}' over {len(items)} item(s)" + (f", {len(done)} done before" if done else ""),
            source=SOURCE,
            step_id=block.step_id,
            data=self.where(block),
        )
        return self.loop_pump(block, step)

    def loop_pump(self, block, step) -> Outcome:
        config, progress = step["loop_config"], block.progress
        stop = config["on_error"] == "stop"
        if config["execution_mode"] == "sequential":
            limit = 1
        else:
            limit = config.get("max_parallelism") or max(progress["total"], 1)
        while not (stop and progress["failed"]) and progress["running"] < limit:
            free = limit - progress["running"]
            waiting = StepExecution.objects.filter(parent=block, status=PENDING).order_by("iteration")[:free]
            slots = list(waiting)
            if not slots:
                break
            for slot in slots:
                slot.parent = block
                self.row_start(slot)
                outcome = self.walk_chain(config["loop_body"][0], scope=slot.scope, parent=slot)
                if outcome.finished:
                    self.row_finish(slot, outcome)
                    self.loop_fold(block, slot, outcome)
                else:
                    progress["running"] += 1
                if stop and progress["failed"]:
                    break
        return self.loop_settle(block, step)

    def loop_fold(self, block, slot, outcome: Outcome) -> None:
        progress = block.progress
        if outcome.status == COMPLETED:
            progress["done"] += 1
        else:
            progress["failed"] += 1
            progress["error"] = progress["error"] or f"iteration {slot.iteration}: {outcome.error}"

    def loop_child_done(self, block, step, slot, outcome: Outcome) -> Outcome:
        block.progress["running"] -= 1
        self.loop_fold(block, slot, outcome)
        return self.loop_pump(block, step)

    def loop_settle(self, block, step) -> Outcome:
        progress = block.progress
        if progress["failed"] and step["loop_config"]["on_error"] == "stop":
            self.cancel_below(block, f"Cancelled: an iteration of loop '{block.step_id}' failed (on_error: stop)")
            return Outcome(FAILED, error=progress["error"])
        if progress["running"] or progress["done"] + progress["failed"] < progress["total"]:
            return WAITING
        rows = self.loop_slots(block).values_list("iteration", "status", "output_data", "error_message", "attempt")
        newest: dict[int, tuple] = {}
        for index, status, output, error, attempt in rows:
            if index not in newest or attempt > newest[index][0]:
                newest[index] = (attempt, status, output, error)
        iterations, errors = [], []
        for index in range(progress["total"]):
            _, status, output, error = newest.get(index, (0, FAILED, None, "no record"))
            iterations.append(output if status == COMPLETED else None)
            if status != COMPLETED:
                errors.append({"index": index, "error": error})
        output = {"iterations": iterations, "total_count": progress["total"], "failed_count": len(errors)}
        if errors:
            output["errors"] = errors
        return Outcome(COMPLETED, output)

    # -- fork-join -------------------------------------------------------------------------------

    def fork_join_begin(self, block, step) -> Outcome:
        config = step["fork_join_config"]
        branches = config["branches"]
        total = len(branches)
        policy = config["join_policy"]
        needed = {"all": total, "any": 1, "majority": total // 2 + 1}.get(policy) or config["n_required"]
        block.progress = {"total": total, "needed": needed, "running": 0, "status": {}, "errors": {}}
        for name, branch in branches.items():
            scope = branch_scope(block.scope, block.step_id, name)
            earlier = self.latest(scope, block.step_id) if self.run.attempt > 1 else None
            if earlier is not None and earlier.status == COMPLETED:
                block.progress["status"][name] = COMPLETED  # done in an earlier attempt: kept
                continue
            slot = self.new_row(block.step_id, scope=scope, parent=block, step_type=BRANCH, branch=name)
            self.row_start(slot, due_seconds=branch.get("timeout_seconds") or config.get("branch_timeout_seconds"))
            outcome = self.walk_chain(branch["steps"][0], scope=scope, parent=slot)
            if outcome.finished:
                self.row_finish(slot, outcome)
                self.fork_join_fold(block, name, outcome)
            else:
                block.progress["running"] += 1
                block.progress["status"][name] = StepStatus.RUNNING
        return self.fork_join_settle(block, step)

    def fork_join_fold(self, block, name: str, outcome: Outcome) -> None:
        block.progress["status"][name] = outcome.status
        if outcome.status == FAILED:
            block.progress["errors"][name] = outcome.error

    def fork_join_child_done(self, block, step, slot, outcome: Outcome) -> Outcome:
        block.progress["running"] -= 1
        self.fork_join_fold(block, slot.branch, outcome)
        return self.fork_join_settle(block, step)

    def fork_join_settle(self, block, step) -> Outcome:
        progress = block.progress
        statuses = progress["status"]
        succeeded = sum(1 for status in statuses.values() if status == COMPLETED)
        failed = sum(1 for status in statuses.values() if status == FAILED)
        if succeeded < progress["needed"] and progress["total"] - failed >= progress["needed"]:
            return WAITING
        if progress["running"]:
            self.cancel_below(block, f"Cancelled: fork-join '{block.step_id}' was decided without this branch")
            for name, status in statuses.items():
                if status == StepStatus.RUNNING:
                    statuses[name] = StepStatus.CANCELLED
            progress["running"] = 0
        policy = step["fork_join_config"]["join_policy"]
        if succeeded < progress["needed"]:
            reasons = "; ".join(f"branch '{name}': {error}" for name, error in sorted(progress["errors"].items()))
            return Outcome(
                FAILED,
                error=f"{succeeded} of {progress['total']} branches succeeded, {progress['needed']} needed "
                f"(join_policy '{policy}'): {reasons}",
            )
        scopes = [branch_scope(block.scope, block.step_id, name) for name in step["fork_join_config"]["branches"]]
        rows = self.run.steps.filter(scope__in=scopes, step_id=block.step_id, step_type=BRANCH)
        outputs = self.latest_outputs(rows.values_list("branch", "status", "output_data", "attempt"))
        output = {name: outputs[name] for name in step["fork_join_config"]["branches"] if name in outputs}
        return Outcome(COMPLETED, {**output, "branch_status": dict(statuses)})
