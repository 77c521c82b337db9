"""Every Kafka message the engine sends, built in one place (the wire contract's shapes).

Topics: execution and cancellation requests (API -> executor), agent tasks (executor -> bridge),
agent results (bridge -> executor) and monitoring updates (executor and API -> observers).
"""

from datetime import timedelta

from core import kafka
from core.formats import iso_datetime

RUN_EVENT = "workflow"  # the step_id of run-level monitoring updates
# An agent result's optional {message, level, data, timestamp}: the bridge's log entry of the call,
# written by the executor with the result (runs/bridge.py call_log).
CALL_LOG = "call_log"


def execution_request(run) -> dict:
    return {
        "message_type": "execution_request",
        "run_id": str(run.id),
        "workflow_plan": run.plan,
        "input_data": run.input_data,
        "timestamp": kafka.now_iso(),
        "attempt": run.attempt,
        "message_id": kafka.new_message_id(),
    }


def cancellation_request(run, *, reason: str) -> dict:
    return {
        "message_type": "cancellation_request",
        "run_id": str(run.id),
        "cancelled_by": run.cancelled_by,
        "reason": reason,
        "timestamp": kafka.now_iso(),
        "message_id": kafka.new_message_id(),
        "attempt": run.attempt,  # new: a request for an earlier attempt changes nothing
    }


def agent_task(run, execution, *, retry: dict | None = None) -> dict:
    task = {
        "run_id": str(run.id),
        "task_id": execution.task_id,
        "agent_name": execution.agent_name,
        "input_data": execution.input_data,
        "correlation_id": execution.correlation_id,
        "timestamp": kafka.now_iso(),
        "step_id": execution.step_id,
        "attempt": run.attempt,
        "timeout_ms": execution.timeout_ms,
        # The try's own deadline (without the executor's grace): a task picked up late never overlaps
        # the retry the executor schedules once it passes.
        "deadline": iso_datetime(execution.started_at + timedelta(milliseconds=execution.timeout_ms)),
    }
    if retry:
        task["retry"] = retry
    if execution.agent_task_id:  # the agent's task is known already: the bridge follows it, no second call
        task["agent_task_id"] = execution.agent_task_id
        task["agent_context_id"] = execution.agent_context_id
    return task


def agent_result(
    task: dict,
    *,
    ok: bool,
    output,
    error: str | None,
    duration_ms: int,
    status: str | None = None,
    agent_task_id: str | None = None,
    agent_context_id: str | None = None,
) -> dict:
    """`status` "INPUT_REQUIRED" (with `output` the agent's question) when its task waits for a person."""
    result = {
        "run_id": task.get("run_id"),
        "task_id": task.get("task_id"),
        "status": status or ("SUCCESS" if ok else "FAILURE"),
        "output_data": output if ok else None,
        "correlation_id": task.get("correlation_id"),
        "error_message": None if ok else error,
        "timestamp": kafka.now_iso(),
        "duration_ms": duration_ms,
    }
    if agent_task_id:
        result["agent_task_id"] = agent_task_id
        result["agent_context_id"] = agent_context_id
    return result


def agent_task_cancel(run, execution, *, reason: str) -> dict:
    """Asks the bridge to cancel the agent's open A2A task (best effort; no result comes back)."""
    return {
        "message_type": "agent_task_cancel",
        "run_id": str(run.id),
        "step_id": execution.step_id,
        "agent_name": execution.agent_name,
        "correlation_id": execution.correlation_id,
        "agent_task_id": execution.agent_task_id,
        "agent_context_id": execution.agent_context_id,
        "reason": reason,
        "timestamp": kafka.now_iso(),
    }


def monitoring_update(run, *, status: str, step_id: str = RUN_EVENT, step_name: str = "", metadata=None) -> dict:
    return {
        "run_id": str(run.id),
        "step_id": step_id,
        "step_name": step_name or (run.workflow_name if step_id == RUN_EVENT else step_id),
        "status": status,
        "timestamp": kafka.now_iso(),
        "metadata": {"attempt": run.attempt, **(metadata or {})},
    }
