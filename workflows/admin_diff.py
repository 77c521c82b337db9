"""Comparing two versions of a workflow in the admin: what changed step by step, and a line diff of the
pretty-printed JSON (difflib), on a page of its own (`<id>/diff/?from=1&to=3`). Every text reaches the
page through the template's autoescape; nothing here builds HTML."""

import difflib
import json
from collections.abc import Mapping

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse

from workflows.graph import step_order
from workflows.models import WorkflowVersion
from workflows.reading import definition_for_reading
from workflows.services import definition_changes

CONTEXT_LINES = 3  # unchanged lines shown around each change
HISTORY_ROWS = 25  # versions listed on the workflow's page (the diff form offers all of them)
SHORT = 80  # a changed value longer than this is cut short in the step summary


def _ordered(definition, order: list[str]):
    """The reading form of a definition with its steps in `order` (ids it lacks are skipped), so that
    both sides of a diff list their steps alike and a step drawn in another layer is not a move."""
    shown = definition_for_reading(definition)
    if isinstance(shown, Mapping) and isinstance(shown.get("steps"), Mapping):
        steps = shown["steps"]
        shown["steps"] = {key: steps[key] for key in order if key in steps} | dict(steps)
    return shown


def pretty_lines(before, after) -> tuple[list[str], list[str]]:
    """Both definitions as indented JSON lines, steps in the newer one's drawing order (then removed ones)."""
    order = step_order(after) + [key for key in step_order(before) if key not in step_order(after)]
    return tuple(
        json.dumps(_ordered(side, order), indent=2, ensure_ascii=False).splitlines() for side in (before, after)
    )


def _segments(lines: list[str]) -> dict[str, list[str]]:
    """The pretty JSON cut into the part before the steps, one part per step, and the part after:
    steps are diffed with their own kind, so a step's lines are never matched with another's."""
    parts: dict[str, list[str]] = {"": []}
    current, inside = "", False
    for line in lines:
        if inside and line.startswith('    "') and line.endswith("{"):
            current = "step:" + json.loads(line.strip()[:-1].rstrip().rstrip(":"))
            parts[current] = []
        elif inside and line in ("  }", "  },"):
            current, inside = "after", False
            parts[current] = []
        parts[current].append(line)
        if line == '  "steps": {':
            inside = True
    return parts


class _StepwiseMatcher(difflib.SequenceMatcher):
    """A matcher whose opcodes come from matching each part of `_segments` with the same part of the
    other side; grouping with context (get_grouped_opcodes) then works over the whole text."""

    def __init__(self, before: list[str], after: list[str]):
        super().__init__(a=before, b=after, autojunk=False)
        old, new = _segments(before), _segments(after)
        codes, i, j = [], 0, 0
        steps = [key for key in new if key.startswith("step:")]
        steps += [key for key in old if key.startswith("step:") and key not in new]  # removed: last on both sides
        for key in ["", *steps, "after"]:
            a, b = old.get(key, []), new.get(key, [])
            for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
                if codes and tag == codes[-1][0] == "equal":
                    codes[-1] = ("equal", codes[-1][1], i + i2, codes[-1][3], j + j2)
                else:
                    codes.append((tag, i + i1, i + i2, j + j1, j + j2))
            i, j = i + len(a), j + len(b)
        self._stepwise = codes or [("equal", 0, 0, 0, 0)]

    def get_opcodes(self):
        return self._stepwise


def line_rows(before: list[str], after: list[str], context: int = CONTEXT_LINES) -> list[dict]:
    """Rows of a side-numbered line diff: kind "same", "del", "add", or "gap" (unchanged lines left
    out, `skipped` of them); old and new line numbers start at 1. No rows when nothing differs."""
    if before == after:
        return []
    rows: list[dict] = []
    shown_until = 0  # in `before`: where the previous group ended
    for group in _StepwiseMatcher(before, after).get_grouped_opcodes(context):
        first = group[0][1]
        if first > shown_until:
            rows.append({"kind": "gap", "skipped": first - shown_until})
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                pairs = zip(range(i1, i2), range(j1, j2), strict=True)
                rows += [{"kind": "same", "old": i + 1, "new": j + 1, "text": before[i]} for i, j in pairs]
                continue
            rows += [{"kind": "del", "old": i + 1, "new": "", "text": before[i]} for i in range(i1, i2)]
            rows += [{"kind": "add", "old": "", "new": j + 1, "text": after[j]} for j in range(j1, j2)]
        shown_until = group[-1][2]
    if rows and shown_until < len(before):
        rows.append({"kind": "gap", "skipped": len(before) - shown_until})
    return rows


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHORT else text[: SHORT - 1] + "\u2026"  # the line diff has it whole


def step_changes(before, after) -> dict:
    """What changed, in words: top-level fields ({field, old, new}: JSON texts cut to SHORT), steps
    added and removed, and per changed step the keys that differ (with their values)."""
    before = before if isinstance(before, Mapping) else {}
    after = after if isinstance(after, Mapping) else {}
    fields, added, removed, changed = [], [], [], []
    for path, (old, new) in definition_changes(before, after).items():
        if not path.startswith("steps."):
            fields.append({"field": path, "old": _short(old), "new": _short(new)})
        elif old is None:
            added.append(path[6:])
        elif new is None:
            removed.append(path[6:])
        else:
            keys = sorted(set(old) | set(new)) if isinstance(old, Mapping) and isinstance(new, Mapping) else []
            diffs = [
                {"key": key, "old": _short(old.get(key)), "new": _short(new.get(key))}
                for key in keys
                if old.get(key) != new.get(key)
            ]
            changed.append({"step": path[6:], "keys": diffs})
    order = {key: number for number, key in enumerate(step_order(after) + step_order(before))}
    for items, key in ((added, None), (removed, None), (changed, "step")):
        items.sort(key=lambda item, key=key: order.get(item[key] if key else item, len(order)))
    return {"fields": fields, "added": added, "removed": removed, "changed": changed}


class VersionPairForm(forms.Form):
    """The two versions to compare; offered: every version of the workflow."""

    def __init__(self, data, *, versions: list[int]):
        super().__init__(data)
        choices = [(number, f"v{number}") for number in versions]
        self.fields["from"] = forms.TypedChoiceField(label="From", choices=choices, coerce=int)
        self.fields["to"] = forms.TypedChoiceField(label="To", choices=choices, coerce=int)


def default_pair(versions: list[int]) -> dict:
    """The latest version against the one before it (itself when it is the only one)."""
    latest = versions[0]
    return {"from": versions[1] if len(versions) > 1 else latest, "to": latest}


def version_history(workflow) -> list[dict]:
    """The latest HISTORY_ROWS versions, newest first, each with what changed since the one before."""
    rows = list(
        WorkflowVersion.objects.filter(workflow=workflow)
        .order_by("-version")
        .values("version", "created_at", "created_by", "definition")[: HISTORY_ROWS + 1]
    )
    diff_url = reverse("admin:workflows_workflow_diff", args=[workflow.pk])
    history = []
    for row, previous in zip(rows, rows[1:] + [None], strict=True):
        if len(history) == HISTORY_ROWS:
            break
        steps = row["definition"].get("steps") if isinstance(row["definition"], Mapping) else None
        entry = {**row, "steps": len(steps) if isinstance(steps, Mapping) else 0, "summary": "", "diff_url": ""}
        if previous is not None:
            found = step_changes(previous["definition"], row["definition"])
            parts = [f"{len(found[key])} step(s) {key}" for key in ("added", "removed", "changed") if found[key]]
            parts += [field["field"] for field in found["fields"]]
            entry["summary"] = ", ".join(parts) or "no change"
            entry["diff_url"] = f"{diff_url}?from={previous['version']}&to={row['version']}"
            entry["previous"] = previous["version"]
        history.append(entry)
    return history


def version_diff_view(model_admin, request, object_id):
    workflow = model_admin.get_object(request, object_id)
    if workflow is None:
        raise Http404("No such workflow.")
    if not model_admin.has_view_or_change_permission(request, workflow):
        raise PermissionDenied
    versions = list(
        WorkflowVersion.objects.filter(workflow=workflow).order_by("-version").values_list("version", flat=True)
    )
    if not versions:
        raise Http404("This workflow has no versions.")
    form = VersionPairForm(request.GET if "from" in request.GET else default_pair(versions), versions=versions)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Compare versions of {workflow.name}",
        "workflow": workflow,
        "opts": model_admin.model._meta,
        "original": workflow,  # the theme's header: Workflows > Workflows > <this workflow>
        "form": form,
        "workflow_url": reverse("admin:workflows_workflow_change", args=[workflow.pk]),
    }
    if form.is_valid():
        old, new = form.cleaned_data["from"], form.cleaned_data["to"]
        definitions = dict(
            WorkflowVersion.objects.filter(workflow=workflow, version__in=[old, new]).values_list(
                "version", "definition"
            )
        )
        before_lines, after_lines = pretty_lines(definitions[old], definitions[new])
        rows = line_rows(before_lines, after_lines)
        context |= {
            "compared": True,
            "old": old,
            "new": new,
            "rows": rows,
            "added": sum(row["kind"] == "add" for row in rows),
            "removed": sum(row["kind"] == "del" for row in rows),
            "changes": step_changes(definitions[old], definitions[new]),
            "swap_url": f"?from={new}&to={old}",
        }
    return TemplateResponse(request, "workflows/admin/version_diff.html", context)
