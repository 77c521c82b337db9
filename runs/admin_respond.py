"""The admin's answer to a step waiting for input: a form page per step, through the same service as
`POST /runs/{id}/steps/{sid}/respond` (so it is checked, audited and sent the same way)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from core.errors import DomainError
from core.roles import Role, has_role, user_role
from runs.choices import StepStatus
from runs.input import step_respond
from runs.models import Run, StepExecution
from runs.representations import step_data


class WaitingFilter(admin.SimpleListFilter):
    title = "waiting for input"
    parameter_name = "waiting_for_input"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(waiting_for_input=True)
        if self.value() == "no":
            return queryset.exclude(waiting_for_input=True)  # null = false
        return queryset


class RespondForm(forms.Form):
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), max_length=100_000)
    data = forms.JSONField(required=False, help_text='A JSON object, e.g. {"approved": true}; sent as a data part.')

    def clean(self):
        cleaned = super().clean()
        text, data = cleaned.get("text") or None, cleaned.get("data")
        if data is not None and not isinstance(data, dict):
            self.add_error("data", "Must be a JSON object.")
        if text is None and data is None and not self.errors:
            raise forms.ValidationError("Give a text or data (or both).")
        cleaned["text"] = text
        return cleaned


def question(execution: StepExecution) -> str:
    """The step's input_request as the API shows it (the answer kept for sending again is left out)."""
    shown = step_data(execution)["input_request"]
    return json.dumps(shown, indent=1) if shown else ""


def answer_link(execution: StepExecution) -> str:
    if execution.status != StepStatus.INPUT_REQUIRED:
        return ""
    return reverse("admin:runs_stepexecution_respond", args=[execution.pk])


def respond_view(model_admin, request, object_id):
    if not has_role(user_role(request.user), Role.OPERATOR):
        raise PermissionDenied("Your role does not allow answering steps (operator or above).")
    execution = StepExecution.objects.select_related("run").filter(pk=object_id).first()
    if execution is None:
        raise Http404("No such step execution.")
    run_page = reverse("admin:runs_run_change", args=[execution.run_id])
    form = RespondForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            step_respond(
                run=Run(pk=execution.run_id),
                step_execution_id=execution.pk,
                text=form.cleaned_data["text"],
                data=form.cleaned_data["data"],
                user=request.user,
            )
        except DomainError as exc:
            model_admin.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(run_page)
        model_admin.message_user(request, f"Answer sent to the agent of step '{execution.step_id}'.", messages.SUCCESS)
        return HttpResponseRedirect(run_page)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Answer step '{execution.step_id}'",
        "execution": execution,
        "request_info": execution.input_request,
        "request_data": json.dumps((execution.input_request or {}).get("data"), indent=2),
        "form": form,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/runs/stepexecution/respond.html", context)
