"""A picture of a workflow's step graph: a layered layout of the definition, drawn as an SVG string.

Pure Python and server-side: no script, no font or stylesheet from anywhere. Step ids, agent names
and branch names are user input, so every text and attribute value is escaped here, and the string
may then be marked safe by the page that shows it. The same definition always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.html import escape

BOX_W, BOX_H = 190, 70
GAP_X, GAP_Y = 30, 60
MARGIN = 20
LANE_GAP = 14  # between the lanes of arrows that skip layers
MAX_CHARS = 26  # what fits in a box at font-size 12; longer texts are cut (the tooltip has them whole)
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"  # local fonts only

# (fill, stroke, text) of a box by step status; a run page passes `statuses`.
STATUS_COLOURS = {
    "COMPLETED": ("#dcfce7", "#16a34a", "#14532d"),
    "FAILED": ("#fee2e2", "#dc2626", "#7f1d1d"),
    "RUNNING": ("#dbeafe", "#2563eb", "#1e3a8a"),
    "PENDING": ("#e5e7eb", "#6b7280", "#1f2937"),
    "SKIPPED": ("#f9fafb", "#d1d5db", "#6b7280"),
    "CANCELLED": ("#374151", "#111827", "#f9fafb"),
    "INPUT_REQUIRED": ("#fef3c7", "#d97706", "#78350f"),
}
# Without statuses, boxes are tinted by step type.
TYPE_COLOURS = {
    "agent": ("#ffffff", "#64748b", "#0f172a"),
    "parallel": ("#eef2ff", "#6366f1", "#1e1b4b"),
    "conditional": ("#fff7ed", "#ea580c", "#431407"),
    "loop": ("#f5f3ff", "#7c3aed", "#2e1065"),
    "fork_join": ("#ecfeff", "#0891b2", "#083344"),
}
UNKNOWN_COLOURS = ("#ffffff", "#94a3b8", "#0f172a")
# (stroke, dash) of an arrow by kind.
EDGE_STYLES = {
    "next": ("#475569", ""),
    "true": ("#16a34a", ""),
    "false": ("#dc2626", ""),
    "body": ("#7c3aed", ""),
    "parallel": ("#6366f1", "5 3"),
    "branch": ("#0891b2", ""),
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # a key of EDGE_STYLES
    label: str = ""


def definition_steps(definition) -> dict[str, dict]:
    steps = definition.get("steps") if isinstance(definition, Mapping) else None
    if not isinstance(steps, Mapping):
        return {}
    return {str(key): step for key, step in steps.items() if isinstance(step, Mapping)}


def step_ids(value) -> list[str]:
    return [str(item) for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _chain(edges: list[Edge], block: str, chain: list[str], kind: str, label: str) -> None:
    """The block points at the chain's first step (labelled); each step then points at the next one."""
    previous = block
    for index, child in enumerate(chain):
        edges.append(Edge(previous, child, kind, label if index == 0 else ""))
        previous = child


def step_type(step: Mapping) -> str:
    return str(step.get("type") or "agent")


def graph_edges(definition) -> list[Edge]:
    """Every arrow of the graph, in definition order; arrows to unknown steps are left out."""
    steps = definition_steps(definition)
    edges: list[Edge] = []
    for key, step in steps.items():
        kind = step_type(step)
        if kind == "conditional":
            for field, label in (("if_true_step", "true"), ("if_false_step", "false")):
                if isinstance(step.get(field), str):
                    edges.append(Edge(key, step[field], label, label))
        elif kind == "parallel":
            edges.extend(Edge(key, child, "parallel") for child in step_ids(step.get("parallel_steps")))
        elif kind == "loop":
            config = step.get("loop_config") if isinstance(step.get("loop_config"), Mapping) else {}
            _chain(edges, key, step_ids(config.get("loop_body")), "body", "body")
        elif kind == "fork_join":
            config = step.get("fork_join_config") if isinstance(step.get("fork_join_config"), Mapping) else {}
            branches = config.get("branches") if isinstance(config.get("branches"), Mapping) else {}
            for name, branch in sorted(branches.items()):  # by name: the stored JSON may reorder keys
                steps_of = branch.get("steps") if isinstance(branch, Mapping) else None
                _chain(edges, key, step_ids(steps_of), "branch", str(name))
        if isinstance(step.get("next_step"), str):
            edges.append(Edge(key, step["next_step"], "next"))
    return [edge for edge in edges if edge.source in steps and edge.target in steps and edge.source != edge.target]


def _after_blocks(edges: list[Edge]) -> list[tuple[str, str]]:
    """Layout-only links: a block's next step runs after everything inside the block, so each step
    inside it (nested ones too) points at that next step, which is then drawn below them all."""
    inside: dict[str, list[str]] = {}
    for edge in edges:
        if edge.kind != "next":
            inside.setdefault(edge.source, []).append(edge.target)
    links = []
    for edge in edges:
        if edge.kind != "next" or edge.source not in inside:
            continue
        stack, seen = list(inside[edge.source]), {edge.source}
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            links.append((node, edge.target))
            stack.extend(inside.get(node, ()))
    return links


def graph_layers(definition, edges: list[Edge] | None = None) -> list[list[str]]:
    """Steps by layer: a step sits one layer below the lowest of the steps pointing at it (longest
    path from start_step), and a block's next step below the block's insides. Within a layer, steps
    keep the order a walk from start_step meets them."""
    steps = definition_steps(definition)
    edges = graph_edges(definition) if edges is None else edges
    out: dict[str, list[str]] = {key: [] for key in steps}
    indegree = dict.fromkeys(steps, 0)
    for edge in edges:
        out[edge.source].append(edge.target)
        indegree[edge.target] += 1
    walk = {key: list(targets) for key, targets in out.items()}  # the drawn arrows give the order
    for source, target in _after_blocks(edges):
        if source != target:
            out[source].append(target)
            indegree[target] += 1
    start = definition.get("start_step") if isinstance(definition, Mapping) else None
    # The walk's order: start_step first, then any step nothing points at, then the rest.
    roots = [start] if start in steps else []
    roots += [key for key in steps if indegree[key] == 0 and key != start]
    rank: dict[str, int] = {}
    for root in roots + list(steps):
        stack = [root]
        while stack:
            node = stack.pop()
            if node in rank:
                continue
            rank[node] = len(rank)
            stack.extend(reversed(walk[node]))
    # Kahn's order gives the longest-path layer; steps on a cycle (an invalid definition) are put
    # one layer below everything else rather than looping.
    layer = dict.fromkeys(steps, 0)
    remaining = dict(indegree)
    ready = [key for key in steps if remaining[key] == 0]
    done = set()
    while ready:
        node = ready.pop()
        done.add(node)
        for target in out[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            remaining[target] -= 1
            if remaining[target] == 0:
                ready.append(target)
    if len(done) < len(steps):
        bottom = max((layer[key] for key in done), default=-1) + 1
        for key in steps:
            if key not in done:
                layer[key] = bottom
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for key in sorted(steps, key=rank.__getitem__):
        rows[layer[key]].append(key)
    return rows


def step_order(definition) -> list[str]:
    """Step ids in drawing order (layer by layer), whatever order the stored JSON keeps its keys in."""
    return [key for row in graph_layers(definition) for key in row]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "\u2026"


def _attrs(**values) -> str:
    return " ".join(f'{name.replace("_", "-")}="{escape(value)}"' for name, value in values.items())


def _box(key: str, step: Mapping, x: int, y: int, status: str | None) -> str:
    kind = step_type(step)
    colours = STATUS_COLOURS.get(status, UNKNOWN_COLOURS) if status else TYPE_COLOURS.get(kind, UNKNOWN_COLOURS)
    fill, stroke, ink = colours
    lines = [(key, "600", 13), (kind, "400", 11)]
    if kind == "agent" and step.get("agent_name"):
        lines.append((str(step["agent_name"]), "400", 11))
    if status:
        lines.append((status, "600", 10))
    tooltip = " \u00b7 ".join(text for text, _, _ in lines)
    group = _attrs(**{"class": "step", "data_step": key, "data_type": kind, "data_status": status or ""})
    parts = [
        f"<g {group}>",
        f"<title>{escape(tooltip)}</title>",
        f"<rect {_attrs(x=x, y=y, width=BOX_W, height=BOX_H, rx=8, fill=fill, stroke=stroke, stroke_width=1.5)}/>",
    ]
    top = y + (BOX_H - 15 * len(lines)) // 2 + 12
    for number, (text, weight, size) in enumerate(lines):
        position = _attrs(x=x + BOX_W // 2, y=top + 15 * number, font_size=size, font_weight=weight, fill=ink)
        parts.append(f'<text text-anchor="middle" {position}>{escape(_cut(text))}</text>')
    parts.append("</g>")
    return "".join(parts)


def _arrow(edge: Edge, source: tuple[int, int], target: tuple[int, int], lane: int | None) -> str:
    """An arrow to the next layer is a curve; one that skips layers (or goes back, on an invalid
    definition) runs in its own lane right of the boxes, so it never crosses a box between."""
    colour, dash = EDGE_STYLES[edge.kind]
    if lane is None:
        x1, y1 = source[0] + BOX_W // 2, source[1] + BOX_H
        x2, y2 = target[0] + BOX_W // 2, target[1]
        middle = (y1 + y2) // 2
        path = f"M{x1},{y1} C{x1},{middle} {x2},{middle} {x2},{y2}"
        lx, ly = x1 + (x2 - x1) // 4, y1 + (y2 - y1) // 4 + 4  # a quarter down: labels from one box stay apart
    else:
        x1, y1 = source[0] + BOX_W, source[1] + BOX_H // 2 + 8
        x2, y2 = target[0] + BOX_W, target[1] + BOX_H // 2 - 8
        path = f"M{x1},{y1} H{lane} V{y2} H{x2}"
        lx, ly = (x1 + lane) // 2, y1 - 4
    style = {"fill": "none", "stroke": colour, "stroke_width": 1.5, "marker_end": f"url(#arrow-{edge.kind})"}
    if dash:
        style["stroke_dasharray"] = dash
    group = _attrs(**{"class": f"edge edge-{edge.kind}", "data_from": edge.source, "data_to": edge.target})
    parts = [f"<g {group}>", f'<path d="{path}" {_attrs(**style)}/>']
    if edge.label:
        label = _attrs(x=lx, y=ly, font_size=11, fill=colour, stroke="#ffffff", stroke_width=3)
        parts.append(f'<text text-anchor="middle" paint-order="stroke" {label}>{escape(_cut(edge.label))}</text>')
    parts.append("</g>")
    return "".join(parts)


def _markers() -> str:
    markers = []
    for kind, (colour, _) in EDGE_STYLES.items():
        shape = _attrs(id=f"arrow-{kind}", viewBox="0 0 10 10", refX=9, refY=5, markerWidth=7, markerHeight=7)
        markers.append(f'<marker {shape} orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    return "<defs>" + "".join(markers) + "</defs>"


def workflow_svg(definition, statuses: Mapping[str, str] | None = None) -> str:
    """The step graph as an SVG document string (escaped, deterministic). `statuses` maps step ids to
    step statuses (COMPLETED, FAILED, ...) and colours those boxes by status instead of by type."""
    steps = definition_steps(definition)
    statuses = statuses or {}
    edges = graph_edges(definition)
    rows = graph_layers(definition, edges)
    drawn = {key: number for number, key in enumerate(key for row in rows for key in row)}
    edges.sort(key=lambda edge: drawn[edge.source])  # stable: the same picture whatever the key order
    widest = max((len(row) for row in rows), default=0)
    boxes_width = max(MARGIN * 2 + widest * BOX_W + max(widest - 1, 0) * GAP_X, 2 * MARGIN + BOX_W)
    layer_of = {key: number for number, row in enumerate(rows) for key in row}
    long_edges = [edge for edge in edges if layer_of[edge.target] != layer_of[edge.source] + 1]
    lanes = {edge: boxes_width - MARGIN + LANE_GAP * (number + 1) for number, edge in enumerate(long_edges)}
    width = boxes_width + LANE_GAP * len(long_edges)
    height = max(MARGIN * 2 + len(rows) * BOX_H + max(len(rows) - 1, 0) * GAP_Y, 2 * MARGIN + BOX_H)
    place: dict[str, tuple[int, int]] = {}
    for number, row in enumerate(rows):
        row_width = len(row) * BOX_W + (len(row) - 1) * GAP_X
        left = (boxes_width - row_width) // 2  # each layer centred
        for index, key in enumerate(row):
            place[key] = (left + index * (BOX_W + GAP_X), MARGIN + number * (BOX_H + GAP_Y))
    name = definition.get("name") if isinstance(definition, Mapping) else None
    title = f"Step graph of {name}" if name else "Step graph"
    root = _attrs(width=width, height=height, viewBox=f"0 0 {width} {height}", role="img", font_family=FONT)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" {root} aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        _markers(),
    ]
    parts += [_arrow(edge, place[edge.source], place[edge.target], lanes.get(edge)) for edge in edges]
    for key in (key for row in rows for key in row):
        status = statuses.get(key)
        parts.append(_box(key, steps[key], *place[key], str(status) if status else None))
    if not steps:
        parts.append(f"<text {_attrs(x=MARGIN, y=MARGIN + BOX_H // 2, font_size=12, fill='#64748b')}>No steps</text>")
    parts.append("</svg>")
    return "".join(parts)
