"""Graph checks of a workflow definition: parents, cycles, reachability and which step outputs a
step may reference. The visibility rules are described in validation.py's docstring.

A mixin of the validation checker: it reads the ids, chains and references that the field checks
collected, and reports through ``self.add``. Every walk uses explicit stacks or queues.
"""

from __future__ import annotations

BLOCK_HINTS = {
    "loop": "it runs once per iteration inside loop '{}'",
    "conditional": "it runs only on one branch of conditional '{}'",
    "fork_join": "fork-join '{}' can finish without it (join_policy is not 'all')",
}


class GraphChecks:
    # They run on the ids the field checks accepted, so one bad field never hides the rest.

    def check_graph(self) -> None:
        self.parent: dict[str, tuple[str, str]] = {}  # child -> (block, field)
        self.children: dict[str, list[list[str]]] = {}
        self.main_next: dict[str, str] = {}
        self.ignored_next: dict[str, str] = {}  # target -> the child step whose next_step is ignored
        successors: dict[str, list[tuple[str, str]]] = {key: [] for key in self.order}
        for block, chains in self.chains.items():
            self.children[block] = [[] for _ in chains]
            for number, chain in enumerate(chains):
                for child, field in chain:
                    if child in self.parent:
                        other, where = self.parent[child]
                        self.add(field, f"Step '{child}' is already in '{other}' ({where})", "multiple_parents")
                        continue
                    self.parent[child] = (block, field)
                    self.children[block][number].append(child)
                    successors[block].append((child, field))
        if self.start in self.parent:
            self.add("start_step", f"Step '{self.start}' is inside '{self.parent[self.start][0]}' and cannot start")
            self.start = None
        for step, (target, field) in self.next.items():
            if step in self.parent:
                self.ignored_next.setdefault(target, step)
            elif target in self.parent:
                block, where = self.parent[target]
                message = f"Step '{target}' is inside '{block}' ({where}) and cannot also follow '{step}'"
                self.add(field, message, "multiple_parents")
            else:
                self.main_next[step] = target
                successors[step].append((target, field))
        self.check_cycles(successors)
        self.check_reachable(successors)
        self.place_steps()
        self.check_references()

    def check_cycles(self, successors: dict[str, list[tuple[str, str]]]) -> None:
        state: dict[str, bool] = {}  # False while on the DFS path, True when finished
        for root in sorted(self.order, key=lambda step: step != self.start):
            if root in state:
                continue
            state[root] = False
            stack = [(root, iter(successors[root]))]
            while stack:
                node, edges = stack[-1]
                for target, field in edges:
                    if target not in state:
                        state[target] = False
                        stack.append((target, iter(successors[target])))
                        break
                    if state[target] is False:
                        path = [name for name, _ in stack]
                        self.add(field, "Cycle: " + " -> ".join([*path[path.index(target) :], target]), "cycle")
                else:
                    state[node] = True
                    stack.pop()

    def check_reachable(self, successors: dict[str, list[tuple[str, str]]]) -> None:
        if self.start is None:
            return  # every step would be reported; the start_step issue says it all
        queue, seen = [self.start], {self.start}
        for node in queue:
            for target, _ in successors[node]:
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        for step in self.order:
            if step not in seen:
                why = ""
                if child := self.ignored_next.get(step):
                    why = f" (the next_step of '{child}' is ignored: it runs inside '{self.parent[child][0]}')"
                self.add(f"steps.{step}", f"Step '{step}' is not reachable from '{self.start}'{why}", "unreachable")

    def place_steps(self) -> None:
        """place[step] = (scope, index): scope (None, 0) is the main chain, (block, n) a block's n-th chain."""
        self.place: dict[str, tuple[tuple[str | None, int], int]] = {}
        self.around_of: tuple[str | None, dict] = (None, {})
        node, queue = self.start, []
        while node is not None and node not in self.place:
            self.place[node] = ((None, 0), len(queue))
            queue.append(node)
            node = self.main_next.get(node)
        for block in queue:
            for number, chain in enumerate(self.children.get(block, ())):
                for index, child in enumerate(chain):
                    if child not in self.place:
                        self.place[child] = ((block, number), index)
                        queue.append(child)

    def around(self, step: str) -> dict[tuple[str | None, int], int]:
        """The position of a step in its chain and of each enclosing block in theirs."""
        # References come grouped by step, so remembering the last step is enough and keeps memory linear.
        if self.around_of[0] != step:
            found, node = {}, step
            while node in self.place:
                scope, index = self.place[node]
                found[scope] = index
                node = scope[0]
            self.around_of = (step, found)
        return self.around_of[1]

    def in_loop(self, step: str) -> bool:
        node = step
        while node in self.place:
            node = self.place[node][0][0]
            if self.types.get(node) == "loop":
                return True
        return False

    def visible(self, step: str, target: str) -> bool:
        around, node = self.around(step), target
        while True:
            scope, index = self.place[node]
            if index < around.get(scope, -1):
                return True
            if scope[0] not in self.exporting:
                return False
            node = scope[0]

    def hint(self, step: str, target: str) -> str:
        enclosing = {scope[0] for scope in self.around(step)}
        if step == target or target in enclosing:
            return " (a step cannot use its own output, nor its enclosing block's)"
        node = target
        while (block := self.place[node][0][0]) in self.exporting:
            node = block
        if block is not None and block not in enclosing:
            return f" ({BLOCK_HINTS[self.types[block]].format(block)}; use ${{{block}.output}})"
        return " (it runs later, or concurrently)"

    def check_references(self) -> None:
        for step, field, ref, must_be_visible in self.refs:
            if ref.root == "loop":
                if step in self.place and not self.in_loop(step):
                    self.add(field, f"{ref}: loop references are allowed only inside a loop body", "invalid_reference")
            elif ref.root == "step" and ref.step_id not in self.ids:
                self.add(field, f"{ref}: unknown step '{ref.step_id}'", "unknown_step")
            elif ref.root == "step" and must_be_visible and step in self.place and ref.step_id in self.place:
                if not self.visible(step, ref.step_id):
                    message = f"{ref}: step '{ref.step_id}' is not guaranteed to have finished before '{step}'"
                    self.add(field, message + self.hint(step, ref.step_id), "unavailable_reference")
