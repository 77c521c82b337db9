"""`Idempotency-Key` on `POST /workflows/{id}/execute`: the same key and body answer with the first run.

The key's row is written in the transaction that creates the run, under a unique (user, key): of
concurrent duplicates exactly one commits a run. On PostgreSQL a transaction-scoped advisory lock on
(user, key) is taken first, so a duplicate that arrives while the first is still being handled is
told so at once (409) instead of waiting for it; elsewhere (SQLite: one writer at a time) it waits
for the first to commit and gets the replay. The unique constraint is what guarantees one run on
every database; the lock only chooses the answer.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.errors import Conflict, FieldError, InvalidInput
from runs.models import IdempotencyKey, Run
from runs.services import run_execute

HEADER = "Idempotency-Key"
MAX_LENGTH = 255


class KeyReused(InvalidInput):
    """The key was used before with another body: a 422 whose `error` says so."""

    error_code = "idempotency_key_reused"


@dataclass(frozen=True)
class Executed:
    run: Run
    status_code: int
    replayed: bool


def key_check(value: str) -> str:
    if not 1 <= len(value) <= MAX_LENGTH:
        raise InvalidInput([FieldError(HEADER, f"Must be 1 to {MAX_LENGTH} characters long.", "invalid_length")])
    return value


def request_hash(workflow_id, body) -> str:
    # The workflow is part of the request: the same key and body sent to another workflow is reuse.
    canonical = json.dumps({"workflow_id": str(workflow_id), "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _cutoff():
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)


def _found(user, key: str) -> IdempotencyKey | None:
    """The key's row, also an expired one not purged yet (it still holds the unique (user, key))."""
    return IdempotencyKey.objects.filter(user=user, key=key).select_related("run").first()


def _live(found: IdempotencyKey | None) -> bool:
    return found is not None and found.created_at >= _cutoff()


def _replay(found: IdempotencyKey, digest: str) -> Executed:
    if found.request_hash != digest:
        raise KeyReused.one(HEADER, "This Idempotency-Key was already used with a different request body.", "reused")
    return Executed(found.run, found.status_code, replayed=True)


def _lock(user, key: str) -> bool:
    """PostgreSQL only: False when another transaction is handling this (user, key) right now."""
    if connection.vendor != "postgresql":
        return True
    number = int.from_bytes(hashlib.sha256(f"idempotency:{user.pk}:{key}".encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [number])
        return cursor.fetchone()[0]


def _in_progress() -> Conflict:
    return Conflict("A request with this Idempotency-Key is still being handled; try again in a moment.")


def run_execute_idempotent(*, workflow, input_data: dict, user, key: str, body) -> Executed:
    """run_execute, once per (user, key): a replay returns the first run and writes nothing (no audit)."""
    digest = request_hash(workflow.pk, body)
    found = _found(user, key)
    if _live(found):  # a replay needs no transaction and no lock
        return _replay(found, digest)
    try:
        with transaction.atomic():
            if not _lock(user, key):
                raise _in_progress()
            found = _found(user, key)  # committed by a request that held the lock just before
            if _live(found):
                return _replay(found, digest)
            if found is not None:
                found.delete()  # expired: the key starts over
            run = run_execute(workflow=workflow, input_data=input_data, user=user)
            IdempotencyKey.objects.create(user=user, key=key, request_hash=digest, run=run, status_code=202)
    except IntegrityError:
        # A concurrent duplicate committed first (no advisory lock here): its run is the answer.
        found = _found(user, key)
        if not _live(found):
            raise _in_progress() from None
        return _replay(found, digest)
    return Executed(run, 202, replayed=False)


def idempotency_keys_purge(batch: int = 5000) -> int:
    """Deletes keys older than IDEMPOTENCY_TTL_HOURS, a batch at a time. Returns how many went."""
    total = 0
    while True:
        ids = list(IdempotencyKey.objects.filter(created_at__lt=_cutoff()).values_list("id", flat=True)[:batch])
        if not ids:
            return total
        IdempotencyKey.objects.filter(id__in=ids).delete()
        total += len(ids)
