"""Re-encrypts every secret at rest with the first key of FIELD_ENCRYPTION_KEY.

To replace a key: put the new key first (FIELD_ENCRYPTION_KEY=new,old) and restart, run this, then
remove the old key. Values still in clear (stored by an earlier release) are encrypted too. Every model
field of core/fields.py is covered, soft-deleted rows included; rows are locked batch by batch, so a
concurrent edit is neither lost nor overwritten with an older value.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.services import audit_record
from core.fields import EncryptedCharField, EncryptedSecretsJSONField

BATCH = 500


def encrypted_fields() -> list:
    return [
        field
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedCharField | EncryptedSecretsJSONField)
    ]


def field_reencrypt(field) -> int:
    """Reads each value (any key decrypts it) and writes it back (the first key encrypts it)."""
    manager = field.model._base_manager
    pks = list(manager.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        with transaction.atomic():
            rows = manager.select_for_update().filter(pk__in=pks[start : start + BATCH])
            for pk, value in rows.values_list("pk", field.attname):
                manager.filter(pk=pk).update(**{field.attname: value})
    return len(pks)


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        rows = {}
        for field in encrypted_fields():
            count = rows[f"{field.model._meta.label}.{field.name}"] = field_reencrypt(field)
            self.stdout.write(f"{field.model._meta.label}.{field.name}: {count} row(s) re-encrypted")
        # Who rotated and what it touched; never a key (they are settings, not data).
        audit_record(
            user=None,
            action="encryption_key.rotate",
            resource_type="encryption_key",
            resource_id="FIELD_ENCRYPTION_KEY",
            changes={"rows": [None, rows]},
        )
        self.stdout.write("Done: keys after the first in FIELD_ENCRYPTION_KEY can now be removed.")
