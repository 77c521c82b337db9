"""The retry policy of one agent call: the defaults, then the agent's `retry_config`, then the step's
own `retry`. The executor (deadline retries) and the bridge (retries within a call) both use this."""

from datetime import timedelta

from agents.choices import DEFAULT_RETRY_CONFIG


def retry_policy(agent_config: dict | None, override: dict | None = None) -> dict:
    """`agent_config` is the agent's retry_config (None when the agent is gone); `override` the step's."""
    return {**DEFAULT_RETRY_CONFIG, **(agent_config or {}), **(override or {})}


def retry_delay(policy: dict, retry_number: int) -> timedelta:
    """How long to wait before retry number `retry_number` (1 = the first retry)."""
    delay = policy["initial_delay_ms"] * policy["backoff_multiplier"] ** (retry_number - 1)
    return timedelta(milliseconds=min(delay, policy["max_delay_ms"]))
