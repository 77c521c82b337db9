"""The circuit breakers on /metrics. The bridges make the calls in processes of their own, so the
counters live in the shared store (agents.breaker_store) and this collector reads them at scrape time
for every live agent (registered once on prometheus_client's default REGISTRY, which /metrics exports)."""

import logging
import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agents import breaker

log = logging.getLogger(__name__)


def _families():
    return (
        CounterMetricFamily(
            "wfplatform_agent_calls",
            "Agent calls made by the bridges (a call's own retries are part of it).",
            labels=["agent"],
        ),
        CounterMetricFamily(
            "wfplatform_agent_call_failures",
            "Agent calls that failed for the circuit breaker (HTTP errors, timeouts, unreachable).",
            labels=["agent"],
        ),
        CounterMetricFamily(
            "wfplatform_agent_circuit_opened", "Times the agent's circuit breaker opened.", labels=["agent"]
        ),
        GaugeMetricFamily(
            "wfplatform_agent_circuit_state",
            "1 for the state the agent's circuit breaker is in.",
            labels=["agent", "state"],
        ),
    )


class CircuitCollector:
    def describe(self):
        return list(_families())  # names only: registering must not read the store

    def collect(self):
        from agents.breaker_store import store
        from agents.models import Agent

        calls, failures, opened, states = _families()
        try:
            agents = list(Agent.objects.live().values_list("id", "name", "circuit_breaker_config"))
            circuits = store().read_many([str(agent_id) for agent_id, _, _ in agents])
        except Exception:  # noqa: BLE001 - a scrape while the database or Redis is away shows no breakers
            log.warning("circuit breaker metrics unavailable", exc_info=True)
            return
        now = time.time()
        for agent_id, name, config in agents:
            circuit = circuits.get(str(agent_id)) or breaker.fresh()
            calls.add_metric([name], circuit["calls_total"])
            failures.add_metric([name], circuit["failures_total"])
            opened.add_metric([name], circuit["opened_total"])
            current = breaker.view(circuit, breaker.config_of(config), now)["state"]
            for state in breaker.STATES:
                states.add_metric([name, state], 1 if state == current else 0)
        yield from (calls, failures, opened, states)


_registered = []


def collector_register() -> None:
    """Once per process (AgentsConfig.ready may run again, e.g. in tests)."""
    if _registered:
        return
    from prometheus_client import REGISTRY

    collector = CircuitCollector()
    REGISTRY.register(collector)
    _registered.append(collector)
