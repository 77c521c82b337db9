"""Where the circuit breakers' state lives, shared by every bridge process: Redis when REDIS_URL is set
(one JSON value per agent, changed with WATCH/MULTI), else the database (one `AgentCircuit` row per
agent, changed under its row lock). Both run the same state machine (agents.breaker)."""

import contextlib
import json
import logging
import threading

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from agents import breaker
from agents.models import AgentCircuit

log = logging.getLogger(__name__)
REDIS_PREFIX = "wf:circuit:"
# A circuit nobody touched for this long (its agent gone) leaves Redis.
REDIS_TTL_SECONDS = 30 * 24 * 3600
_redis_clients: dict = {}
# SQLite has no row locks: within one process (the embedded default's one bridge) this stands in for them.
_local = threading.Lock()
_READ_MANY = "SELECT agent_id, data FROM agents_agentcircuit WHERE agent_id = ANY(%s::uuid[])"


def store():
    """The store of this process's settings."""
    if settings.REDIS_URL:
        return RedisStore(settings.REDIS_URL)
    return DatabaseStore()


class DatabaseStore:
    def read_many(self, keys: list[str]) -> dict[str, dict]:
        if connection.vendor != "postgresql":
            rows = AgentCircuit.objects.filter(agent_id__in=keys).values_list("agent_id", "data")
            return {str(agent_id): {**breaker.fresh(), **data} for agent_id, data in rows}
        # One array parameter, the SQL fixed: the ORM's IN list of 20 UUIDs took 1 ms of an agents page.
        with connection.cursor() as cursor:
            cursor.execute(_READ_MANY, [keys])
            rows = cursor.fetchall()
        return {str(agent_id): {**breaker.fresh(), **json.loads(data)} for agent_id, data in rows}

    def change(self, key: str, step):
        """`step(circuit) -> (result, changed circuit or None)`, under the row's lock; returns result."""
        circuit = self.read_many([key]).get(key)
        if circuit is not None:
            result, changed = step(circuit)
            if changed is None:  # the common case (a closed breaker lets a call through) takes no lock
                return result
        with _local if connection.vendor == "sqlite" else contextlib.nullcontext(), transaction.atomic():
            row = AgentCircuit.objects.select_for_update().filter(agent_id=key).first()
            if row is None:
                try:
                    with transaction.atomic():
                        row = AgentCircuit.objects.create(agent_id=key, data=breaker.fresh())
                except IntegrityError:  # another bridge created it first
                    row = AgentCircuit.objects.select_for_update().get(agent_id=key)
            result, changed = step({**breaker.fresh(), **row.data})
            if changed is not None:
                row.data = changed
                row.save(update_fields=["data", "updated_at"])
        return result


class RedisStore:
    def __init__(self, url: str):
        import redis

        if url not in _redis_clients:
            _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.client = _redis_clients[url]

    def read_many(self, keys: list[str]) -> dict[str, dict]:
        if not keys:
            return {}
        values = self.client.mget([REDIS_PREFIX + key for key in keys])
        return {key: {**breaker.fresh(), **json.loads(raw)} for key, raw in zip(keys, values, strict=True) if raw}

    def change(self, key: str, step):
        from redis.exceptions import WatchError

        name = REDIS_PREFIX + key
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)
                    raw = pipe.get(name)
                    result, changed = step({**breaker.fresh(), **json.loads(raw)} if raw else breaker.fresh())
                    if changed is None:
                        pipe.unwatch()
                        return result
                    pipe.multi()
                    pipe.set(name, json.dumps(changed), ex=REDIS_TTL_SECONDS)
                    pipe.execute()
                    return result
                except WatchError:  # another bridge changed it meanwhile: compute again on its value
                    continue


def circuit_admit(key: str, config: dict, now: float, lease_seconds: float):
    """A Ticket, or a Wait (agents.breaker.admit, on the shared state)."""
    return store().change(key, lambda circuit: breaker.admit(circuit, config, now, key, lease_seconds))


def circuit_record(
    ticket, config: dict, failed: bool | None, now: float, error: str | None, earlier: dict | None = None
) -> dict:
    """Records how a call ended, after `earlier` ({generation: count} of successes not written yet)."""

    def step(circuit):
        for generation, count in (earlier or {}).items():
            circuit = breaker.successes_record(circuit, config, generation, count, now)
        changed = breaker.record(circuit, config, ticket, failed, now, error)
        return changed, changed

    after = store().change(ticket.key, step)
    if after["state"] == breaker.OPEN and after["opened_at"] == now:
        log.warning("circuit breaker of agent %s opened: %s", ticket.key, error)
    return after


def circuit_successes(key: str, config: dict, successes: dict, now: float) -> dict:
    """Writes successes in bulk: {generation: count} of calls admitted while the circuit was closed."""

    def step(circuit):
        for generation, count in successes.items():
            circuit = breaker.successes_record(circuit, config, generation, count, now)
        return circuit, circuit

    return store().change(key, step)


def circuit_release(ticket) -> None:
    """Gives a trial's place back without an outcome (its task no longer needs the call)."""
    if ticket.trial is None:
        return

    def step(circuit):
        if ticket.trial not in circuit["trials"]:
            return None, None
        trials = {tid: until for tid, until in circuit["trials"].items() if tid != ticket.trial}
        return None, {**circuit, "trials": trials}

    store().change(ticket.key, step)


def circuit_views(agents, now: float) -> dict:
    """agent pk -> what the API shows of its breaker (agents.breaker.view), in one read for them all."""
    keys = [str(agent.pk) for agent in agents]
    circuits = store().read_many(keys) if keys else {}
    return {
        agent.pk: breaker.view(circuits.get(str(agent.pk)), breaker.config_of(agent.circuit_breaker_config), now)
        for agent in agents
    }
