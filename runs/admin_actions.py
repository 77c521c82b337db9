"""The buttons on a run's admin page: pause, resume, retry, cancel and rerun, each a POST through the
same service as the API (so checked, audited and sent the same way), for operators and above."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse

from core.errors import DomainError, InvalidInput
from core.roles import Role, has_role, user_role
from runs import services
from runs.choices import CANCELLABLE_RUN, FINISHED_RUN, PAUSABLE_RUN, RETRYABLE_RUN, RunStatus
from runs.models import Run
from runs.pause import run_pause, run_resume
from runs.plan import Plan
from runs.rerun import run_rerun


def _rerun(*, run: Run, user, data) -> Run:
    text = (data.get("input_data") or "").strip()
    try:
        input_data = json.loads(text) if text else None
    except ValueError as exc:
        raise InvalidInput.one("input_data", f"The input is not JSON: {exc}") from None
    return run_rerun(run, user=user, from_step=data.get("from_step") or None, input_data=input_data)


# name: (button label, the statuses it applies to, what it does, the message on success)
ACTIONS = {
    "pause": ("Pause", PAUSABLE_RUN, lambda run, user, data: run_pause(run=run, user=user), "Run paused."),
    "resume": ("Resume", (RunStatus.PAUSED,), lambda run, user, data: run_resume(run=run, user=user), "Run resumed."),
    "cancel": (
        "Cancel",
        CANCELLABLE_RUN,
        lambda run, user, data: services.run_cancel(run=run, user=user, reason=data.get("reason", "")),
        "Run cancelled.",
    ),
    "retry": ("Retry", RETRYABLE_RUN, lambda run, user, data: services.run_retry(run=run, user=user), "Run retried."),
    "rerun": ("Rerun as a new run", FINISHED_RUN, lambda run, user, data: _rerun(run=run, user=user, data=data), ""),
}


def _main_chain(run: Run) -> list[str]:
    """The top-level steps a rerun may start from, in order."""
    if not run.plan:
        return []
    plan, found = Plan.of(run.plan), []
    step = plan.start
    while step and step not in found:
        found.append(step)
        step = plan.next.get(step)
    return found


def run_actions_context(request, run: Run) -> dict:
    """What the change page shows: the buttons that apply to the run now, for a user who may use them."""
    if run is None or not has_role(user_role(request.user), Role.OPERATOR):
        return {"run_actions": []}
    shown = [
        {"name": name, "label": label, "url": reverse("admin:runs_run_action", args=[run.pk, name])}
        for name, (label, statuses, _, _) in ACTIONS.items()
        if run.status in statuses
    ]
    return {
        "run_actions": shown,
        "rerun_steps": _main_chain(run),
        "run_input": json.dumps(run.input_data or {}, indent=1),
    }


def run_action_view(model_admin, request, object_id, name):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not has_role(user_role(request.user), Role.OPERATOR):
        raise PermissionDenied("Your role does not allow changing runs (operator or above).")
    run = Run.objects.filter(pk=object_id).first()
    if run is None or name not in ACTIONS:
        raise Http404("No such run or action.")
    _, _, act, done = ACTIONS[name]
    page = reverse("admin:runs_run_change", args=[run.pk])
    try:
        changed = act(run, request.user, request.POST)
    except DomainError as exc:
        model_admin.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(page)
    if name == "rerun":
        model_admin.message_user(request, f"New run {changed.pk} started from run {run.pk}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:runs_run_change", args=[changed.pk]))
    model_admin.message_user(request, done, messages.SUCCESS)
    return HttpResponseRedirect(page)
