"""The step graph picture: every example workflow (one per step type) draws as well-formed SVG naming
every step, with the arrows of its type; user text is escaped; statuses colour the boxes; big graphs
draw every box (their speed is bench/graph.py's); the workflow's admin page shows the graph, the step
table and the pretty definition."""

import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import AgentFactory
from workflows.graph import STATUS_COLOURS, graph_layers, step_order, workflow_svg
from workflows.models import Workflow
from workflows.services import workflow_create

SVG = "{http://www.w3.org/2000/svg}"
EXAMPLES = sorted((Path(settings.BASE_DIR) / "examples").glob("*.json"))


def parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def boxes(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-step"): g for g in root.iter(f"{SVG}g") if g.get("class") == "step"}


def arrows(root: ET.Element) -> list[tuple[str, str, str, str]]:
    found = []
    for g in root.iter(f"{SVG}g"):
        if (g.get("class") or "").startswith("edge "):
            label = g.find(f"{SVG}text")
            kind = g.get("class").split("edge-")[1]
            found.append((g.get("data-from"), g.get("data-to"), kind, "" if label is None else label.text))
    return found


def texts(element: ET.Element) -> list[str]:
    return [text.text for text in element.iter(f"{SVG}text")]


def chain(count: int) -> dict:
    steps = {f"s{n}": {"id": f"s{n}", "agent_name": "A", "next_step": f"s{n + 1}"} for n in range(count)}
    steps[f"s{count - 1}"]["next_step"] = None
    return {"name": "chain", "start_step": "s0", "steps": steps}


def test_there_is_an_example_of_every_step_type():
    types = {step.get("type", "agent") for path in EXAMPLES for step in json.loads(path.read_text())["steps"].values()}
    assert types == {"agent", "parallel", "conditional", "loop", "fork_join"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_draws_as_well_formed_svg_naming_every_step(path):
    definition = json.loads(path.read_text())
    root = parsed(workflow_svg(definition))
    drawn = boxes(root)
    assert set(drawn) == set(definition["steps"])
    for key, step in definition["steps"].items():
        lines = texts(drawn[key])
        assert lines[0] == key and lines[1] == step.get("type", "agent")
        if step.get("type", "agent") == "agent":
            assert step["agent_name"] in lines
    for key, step in definition["steps"].items():
        if step.get("next_step"):
            assert (key, step["next_step"], "next", "") in arrows(root)


def test_the_arrows_of_each_block_type_are_drawn_and_labelled():
    definition = json.loads((Path(settings.BASE_DIR) / "examples" / "mixed.json").read_text())
    drawn = set(arrows(parsed(workflow_svg(definition))))
    assert ("many-words", "summaries", "true", "true") in drawn
    assert ("many-words", "short-note", "false", "false") in drawn
    assert ("per-word", "both-ways", "body", "body") in drawn
    assert {("both-ways", "shout-word", "parallel", ""), ("both-ways", "echo-word", "parallel", "")} <= drawn
    assert {("summaries", "upper-all", "branch", "upper"), ("summaries", "echo-all", "branch", "echo")} <= drawn
    fork = json.loads((Path(settings.BASE_DIR) / "examples" / "fork_join.json").read_text())
    fork_arrows = set(arrows(parsed(workflow_svg(fork))))
    # A branch of two steps: the block points at the first (labelled), the first at the second.
    assert {("fan-out", "shout", "branch", "loud"), ("shout", "count-loud", "branch", "")} <= fork_arrows


def test_layers_follow_the_flow_and_a_blocks_next_step_is_below_its_insides():
    definition = json.loads((Path(settings.BASE_DIR) / "examples" / "mixed.json").read_text())
    layer = {key: number for number, row in enumerate(graph_layers(definition)) for key in row}
    assert layer["count"] == 0 and layer["per-word"] == 1
    assert layer["many-words"] > max(layer["shout-word"], layer["echo-word"])
    assert layer["done"] > max(layer["upper-all"], layer["echo-all"], layer["short-note"])


def test_step_ids_names_and_branch_names_are_escaped():
    evil = "<script>alert('a long one')</script>"
    definition = {
        "name": 'x"><script>alert(2)</script>',
        "start_step": evil,
        "steps": {
            evil: {"id": evil, "type": "fork_join", "next_step": None, "fork_join_config": {
                "branches": {"<b>&": {"steps": ["a"]}, "two": {"steps": ["b"]}}}},
            "a": {"id": "a", "agent_name": "<img src=x onerror=alert(3)>"},
            "b": {"id": "b", "agent_name": "B & 'co'"},
        },
    }  # fmt: skip
    svg = workflow_svg(definition)
    assert "<script" not in svg and "<img" not in svg and "<b>" not in svg
    root = parsed(svg)
    assert set(boxes(root)) == {evil, "a", "b"}
    assert texts(boxes(root)[evil])[0] == evil[:25] + "\u2026"  # cut to fit, then escaped
    assert boxes(root)[evil].find(f"{SVG}title").text.startswith(evil)  # the tooltip has it whole
    assert (evil, "a", "branch", "<b>&") in arrows(root)
    assert "<img src=x onerror=alert(3)>" in boxes(root)["a"].find(f"{SVG}title").text


def test_statuses_colour_the_boxes_and_are_written_in_them():
    definition = json.loads((Path(settings.BASE_DIR) / "examples" / "mixed.json").read_text())
    statuses = {"count": "COMPLETED", "per-word": "FAILED", "both-ways": "RUNNING", "done": "PENDING"}
    statuses |= {"short-note": "SKIPPED", "summaries": "CANCELLED", "echo-all": "INPUT_REQUIRED"}
    drawn = boxes(parsed(workflow_svg(definition, statuses)))
    fills = {}
    for key, status in statuses.items():
        rect = drawn[key].find(f"{SVG}rect")
        assert (rect.get("fill"), rect.get("stroke")) == STATUS_COLOURS[status][:2]
        assert drawn[key].get("data-status") == status and status in texts(drawn[key])
        fills[status] = rect.get("fill")
    assert len(set(fills.values())) == len(fills)  # every status its own colour
    plain = boxes(parsed(workflow_svg(definition)))["count"].find(f"{SVG}rect").get("fill")
    assert plain not in fills.values() and drawn["upper-all"].get("data-status") == ""


def test_output_is_deterministic_and_grows_with_the_graph():
    small, big = workflow_svg(chain(3)), workflow_svg(chain(30))
    assert workflow_svg(chain(3)) == small
    mixed = json.loads((Path(settings.BASE_DIR) / "examples" / "mixed.json").read_text())
    reordered = json.loads(json.dumps(mixed, sort_keys=True))  # as a database may keep the keys
    reordered["steps"] = dict(reversed(reordered["steps"].items()))
    assert workflow_svg(reordered) == workflow_svg(mixed)
    assert int(parsed(big).get("height")) > int(parsed(small).get("height"))
    wide = {"start_step": "p", "steps": {"p": {"id": "p", "type": "parallel", "parallel_steps": ["a", "b", "c", "d"]}}}
    wide["steps"] |= {key: {"id": key, "agent_name": "A"} for key in "abcd"}
    assert int(parsed(workflow_svg(wide)).get("width")) > int(parsed(small).get("width"))


def test_an_invalid_or_empty_definition_still_draws():
    cycle = {"start_step": "a", "steps": {"a": {"id": "a", "next_step": "b"}, "b": {"id": "b", "next_step": "a"}}}
    assert set(boxes(parsed(workflow_svg(cycle)))) == {"a", "b"}
    assert "No steps" in texts(parsed(workflow_svg({})))
    broken = {"start_step": "a", "steps": {"a": {"id": "a", "type": "loop", "loop_config": "x", "next_step": 3}}}
    assert set(boxes(parsed(workflow_svg(broken)))) == {"a"}


def test_two_hundred_steps_draw_every_box():
    # How long they take is bench/graph.py's (a timing belongs in a benchmark, not a test).
    nested = {f"s{n}": {"id": f"s{n}", "type": "loop", "loop_config": {"loop_body": [f"s{n + 1}"]}} for n in range(199)}
    nested["s199"] = {"id": "s199", "agent_name": "A"}
    wide = {"p": {"id": "p", "type": "parallel", "parallel_steps": [f"c{n}" for n in range(199)]}}
    wide |= {f"c{n}": {"id": f"c{n}", "agent_name": "A"} for n in range(199)}
    for definition in (chain(200), {"start_step": "s0", "steps": nested}, {"start_step": "p", "steps": wide}):
        svg = workflow_svg(definition)
        assert len(boxes(parsed(svg))) == 200


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</section>", start)]


@pytest.mark.django_db
def test_the_admin_page_shows_the_graph_the_step_table_and_the_pretty_definition(staff):
    for name in ("demo-word_count", "demo-uppercase", "demo-echo"):
        AgentFactory(name=name)
    definition = json.loads((Path(settings.BASE_DIR) / "examples" / "mixed.json").read_text())
    definition["steps"]["short-note"]["input_mapping"]["note"] = "<script>alert(1)</script>"
    workflow = workflow_create(user=None, definition=definition)
    page = staff.get(f"/admin/workflows/workflow/{workflow.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert(1)</script>" not in html
    graph = section(html, "workflow-graph")
    svg = graph[graph.index("<svg") : graph.index("</svg>") + len("</svg>")]
    assert set(boxes(parsed(svg))) == set(definition["steps"])
    legend = section(html, "workflow-graph")[graph.index('id="workflow-graph-legend"') :]
    for name in ("agent", "parallel", "conditional", "loop", "fork_join", "loop body", "fork-join branch", "if true"):
        assert f"</i>{name}</span>" in legend
    table = section(html, "workflow-steps")
    rows = dict(re.findall(r'<tr data-step="([^"]+)">(.*?)</tr>', table, re.S))
    assert list(rows) == step_order(definition)  # drawing order, whatever order the database keeps
    assert step_order(definition)[:3] == ["count", "per-word", "both-ways"]
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", rows["count"], re.S)]
    assert cells == ["count", "agent", "demo-word_count", "—", "per-word"]
    cells = [re.sub(r"<[^>]+>", "|", cell) for cell in re.findall(r"<td>(.*?)</td>", rows["per-word"], re.S)]
    assert cells[1:3] == ["|loop|", "—"]
    assert cells[3] == "for each item of ${count.output.words}: both-ways|parallel, on error stop"
    assert "branch echo: echo-all|branch upper: upper-all|join: any" in re.sub(r"<[^>]+>", "|", rows["summaries"])
    assert "if ${count.output.count} &gt;= 3 and exists(${per-word.output})|then summaries, else short-note" in (
        re.sub(r"<[^>]+>", "|", rows["many-words"])
    )
    assert "runs shout-word, echo-word at once" in rows["both-ways"]
    # The definition: collapsed at first (a <details>), escaped, indented, keys in reading order.
    shown_part = section(html, "workflow-definition")
    assert "<details>" in shown_part and "<details open" not in shown_part
    pre = shown_part[shown_part.index('<pre class="wf-json workflow-definition"') : shown_part.index("</pre>")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pre
    shown = json.loads(unescape(pre[pre.index(">") + 1 :]))
    assert shown == Workflow.objects.get(pk=workflow.pk).definition
    assert list(shown)[:3] == ["name", "description", "start_step"]
    assert list(shown["steps"]) == step_order(definition) and list(shown["steps"]["done"])[:2] == ["id", "type"]
    assert '\n  "start_step": "count",\n' in unescape(pre)  # indented by 2


@pytest.mark.django_db
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_examples_page_draws_its_graph_and_lists_every_step(staff, path):
    definition = json.loads(path.read_text())
    for name in {step["agent_name"] for step in definition["steps"].values() if step.get("agent_name")}:
        AgentFactory(name=name)
    workflow = workflow_create(user=None, definition=definition)
    html = staff.get(f"/admin/workflows/workflow/{workflow.pk}/change/").content.decode()
    graph = section(html, "workflow-graph")
    root = parsed(graph[graph.index("<svg") : graph.index("</svg>") + len("</svg>")])
    assert set(boxes(root)) == set(definition["steps"])
    assert set(re.findall(r'<tr data-step="([^"]+)">', section(html, "workflow-steps"))) == set(definition["steps"])
