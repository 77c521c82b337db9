from django.core.management.commands.migrate import Command as DjangoMigrate

from core.schema import schema_lock, version_table_write


class Command(DjangoMigrate):
    """Django's migrate, under the schema lock, recording the revision in alembic_version afterwards."""

    help = DjangoMigrate.help + " Holds the schema lock and records the revision in alembic_version."

    def handle(self, *args, **options):
        if options.get("plan") or options.get("check_unapplied"):
            return super().handle(*args, **options)
        with schema_lock():
            super().handle(*args, **options)
            version_table_write()
