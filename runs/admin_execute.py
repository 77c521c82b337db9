"""The admin's "Execute" of a workflow: a form page with one field per `input_schema` property (its
type, required, enum, default and description) and a raw JSON input for anything else, through the
same service as `POST /workflows/{id}/execute`: the schema check (its field paths become the fields'
errors), inactive workflows and agents (runs/agents_ready.py), the audit event and the outbox."""

import json
import re
import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from core.errors import Conflict, DomainError, InvalidInput
from core.roles import Role, has_role, user_role
from runs import idempotency
from runs.agents_ready import agents_ready_check
from workflows.choices import WorkflowStatus
from workflows.models import Workflow

RAW = "input_json"
KEY = "request_key"
MISSING = object()
BOOLEANS = [("", "—"), ("true", "true"), ("false", "false")]


class SchemaField(forms.CharField):
    """A property as typed. The input_schema alone decides what is valid (as for the API), so an empty
    required property gets the schema's message, "'text' is a required property", not Django's."""

    def validate(self, value):
        pass


def _type(schema: dict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [item for item in kind if item != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def _form_field(schema: dict, required: bool) -> tuple[SchemaField, str]:
    """The field of one property and how its text becomes JSON ("enum", "boolean", "json", or a type)."""
    kind = _type(schema) if isinstance(schema, dict) else None
    schema = schema if isinstance(schema, dict) else {}
    text = {"required": required, "label": schema.get("title"), "help_text": schema.get("description", "")}
    default = schema.get("default", MISSING)
    if isinstance(schema.get("enum"), list):
        choices = [("", "—")] + [(json.dumps(value), str(value)) for value in schema["enum"]]
        initial = json.dumps(default) if default is not MISSING else None
        return SchemaField(widget=UnfoldAdminSelectWidget(choices=choices), initial=initial, **text), "enum"
    if kind == "boolean":
        initial = json.dumps(default) if isinstance(default, bool) else None
        return SchemaField(widget=UnfoldAdminSelectWidget(choices=BOOLEANS), initial=initial, **text), "boolean"
    if kind in ("string", "integer", "number"):
        attrs = {"inputmode": "decimal"} if kind != "string" else {}
        initial = str(default) if default is not MISSING and not isinstance(default, (dict, list)) else None
        widget = UnfoldAdminTextInputWidget(attrs=attrs)
        return SchemaField(widget=widget, initial=initial, strip=kind != "string", **text), kind
    # Arrays, objects and properties of several types: typed as JSON.
    initial = json.dumps(default, indent=2) if default is not MISSING else None
    text["help_text"] = " ".join(part for part in (text["help_text"], f"JSON ({kind or 'any type'}).") if part)
    widget = UnfoldAdminTextareaWidget(attrs={"rows": 3})
    return SchemaField(widget=widget, initial=initial, strip=False, **text), "json"


def _number(text: str, kind: str):
    for parse in (int, float) if kind == "number" else (int,):
        try:
            return parse(text)
        except ValueError:
            continue
    return text  # the schema names what is wrong with it ("'abc' is not of type 'integer'")


class ExecuteForm(forms.Form):
    """Fields named `p_<property>` (or `p<n>` for a name that is no identifier), `input_json` (the whole
    input as JSON: when given, the fields are not read) and the hidden request key (a double submit
    starts one run: the key of execute's Idempotency-Key)."""

    def __init__(self, data=None, *, schema):
        super().__init__(data)
        self.schema = schema if isinstance(schema, dict) else None
        properties = (self.schema or {}).get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = set((self.schema or {}).get("required") or [])
        self.properties: dict[str, tuple[str, str]] = {}  # field name -> (property, kind)
        for number, (name, rule) in enumerate(properties.items()):
            field_name = f"p_{name}" if re.fullmatch(r"[A-Za-z0-9_]+", name) else f"p{number}"
            field, kind = _form_field(rule, name in required)
            field.label = field.label or name
            self.fields[field_name] = field
            self.properties[field_name] = (name, kind)
        self.fields[RAW] = forms.CharField(
            required=False,
            strip=False,
            label="The whole input as JSON" if self.properties else "Input (JSON object)",
            help_text="When filled in, this is the run's input and the fields above are not read."
            if self.properties
            else 'The run\'s input_data, e.g. {"topic": "tides"}.',
            widget=UnfoldAdminTextareaWidget(attrs={"rows": 6 if not self.properties else 4}),
            initial=None if self.properties else "{}",
        )
        self.fields[KEY] = forms.CharField(widget=forms.HiddenInput, initial=f"admin:{uuid.uuid4()}", max_length=255)
        self.raw_used = False

    def input_data(self) -> dict | None:
        """The run's input built from the form (None, with errors added, when some text is no JSON)."""
        raw = self.cleaned_data.get(RAW) or ""
        if raw.strip():
            self.raw_used = True
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                self.add_error(RAW, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
                return None
            if not isinstance(value, dict):
                self.add_error(RAW, "The input must be a JSON object.")
                return None
            return value
        data = {}
        for field_name, (name, kind) in self.properties.items():
            text = self.cleaned_data.get(field_name) or ""
            if text.strip() == "":
                continue  # left out; a required one is then the schema's error
            if kind in ("enum", "boolean", "json"):
                try:
                    data[name] = json.loads(text)
                except json.JSONDecodeError as exc:
                    self.add_error(field_name, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
            else:
                data[name] = text if kind == "string" else _number(text.strip(), kind)
        return None if self.errors else data

    def add_schema_errors(self, exc: InvalidInput, data: dict) -> None:
        """The API's 422 field paths (`input_data.<path>`) as errors of the fields they name."""
        by_property = {name: field_name for field_name, (name, _) in self.properties.items()}
        for error in exc.errors:
            parts = error.field.split(".") if error.field else []
            rest = parts[1:] if parts[:1] == ["input_data"] else parts
            target = None if self.raw_used else by_property.get(rest[0]) if rest else None
            if target is None and not self.raw_used and error.code == "required" and not rest:
                missing = [name for name in by_property if name not in data and repr(name) in error.message]
                target = by_property[missing[0]] if missing else None
            if target is not None:
                self.add_error(target, error.message if len(rest) <= 1 else f"{'.'.join(rest[1:])}: {error.message}")
            else:
                self.add_error(RAW if self.raw_used else None, str(error))


def blocked_reason(workflow: Workflow) -> str:
    """Why execute would refuse this workflow before looking at the input ("" when it would not)."""
    if workflow.status == WorkflowStatus.INACTIVE:
        return f"Workflow {workflow.name!r} is inactive; activate it to run it."
    try:
        agents_ready_check(workflow.definition, workflow_name=workflow.name)
    except Conflict as exc:
        return exc.message
    return ""


def execute_view(model_admin, request, workflow_id):
    if not has_role(user_role(request.user), Role.OPERATOR):
        raise PermissionDenied("Your role does not allow executing workflows (operator or above).")
    workflow = Workflow.objects.filter(pk=workflow_id).first()
    if workflow is None:
        raise Http404("No such workflow.")
    workflow_page = reverse("admin:workflows_workflow_change", args=[workflow.pk])
    if workflow.status == WorkflowStatus.DELETED:  # its page still opens (history, revert): say why not here
        model_admin.message_user(request, f"Workflow {workflow.name!r} is deleted; it cannot run.", messages.ERROR)
        return HttpResponseRedirect(workflow_page)
    form = ExecuteForm(request.POST or None, schema=workflow.definition.get("input_schema"))
    blocked = blocked_reason(workflow)
    if request.method == "POST" and form.is_valid():
        data = form.input_data()
        if data is not None:
            try:
                done = idempotency.run_execute_idempotent(
                    workflow=workflow,
                    input_data=data,
                    user=request.user,
                    key=idempotency.key_check(form.cleaned_data[KEY]),
                    body={"input_data": data},
                )
            except InvalidInput as exc:
                if isinstance(exc, idempotency.KeyReused):
                    notice = "This form already started a run with other input; it has been reset: send it again."
                    model_admin.message_user(request, notice, messages.WARNING)
                    fresh = request.POST.copy()
                    fresh[KEY] = f"admin:{uuid.uuid4()}"
                    form = ExecuteForm(fresh, schema=form.schema)
                    form.is_valid()
                else:
                    form.add_schema_errors(exc, data)
            except DomainError as exc:
                blocked = exc.message
            else:
                run = done.run
                text = f"Run {run.pk} started from {workflow.name} v{run.workflow_version}."
                if done.replayed:
                    text = f"This form had already started run {run.pk}; nothing new was started."
                model_admin.message_user(request, text, messages.INFO if done.replayed else messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:runs_run_change", args=[run.pk]))
    schema = form.schema
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Execute {workflow.name}",
        "workflow": workflow,
        "workflow_url": workflow_page,
        "form": form,
        "property_fields": [form[name] for name in form.properties],
        "raw_field": form[RAW],
        "key_field": form[KEY],
        "blocked": blocked,
        "schema_json": json.dumps(schema, indent=2, ensure_ascii=False) if schema else "",
        # The theme's header then reads Workflows > Workflows > <this workflow>, linked.
        "opts": workflow._meta,
        "original": workflow,
    }
    return TemplateResponse(request, "admin/runs/workflow_execute.html", context)


def execute_url(model_admin):
    """The form's URL, added to RunAdmin.get_urls: admin:runs_run_execute with the workflow's id."""
    view = model_admin.admin_site.admin_view(
        lambda request, workflow_id: execute_view(model_admin, request, workflow_id)
    )
    return path("execute/<uuid:workflow_id>/", view, name="runs_run_execute")
