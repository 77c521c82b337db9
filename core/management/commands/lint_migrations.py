"""Fails on backward-incompatible migrations unless they are the contract step of an earlier expand step.

The rule (docs/migrations.md): a release must run against the schema of the release before it and
the one after it. So a migration may add (nullable columns, columns with a default, tables, indexes)
but not drop or rename columns or tables, nor add NOT NULL without a default, unless it says
`contract_of = "<app>.<expand migration>"`: the expand step shipped a release earlier and the code
stopped using the old column in between. The checks are django-migration-linter's.
"""

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.migrations.loader import MigrationLoader


def project_apps() -> list[str]:
    base = str(settings.BASE_DIR)
    return sorted(
        config.label
        for config in apps.get_app_configs()
        if config.path.startswith(base) and not config.path.startswith(str(settings.BASE_DIR / ".venv"))
    )


def contract_steps(loader: MigrationLoader, labels: list[str]) -> tuple[list[str], list[str]]:
    """(names of migrations marked as contract steps of an existing earlier migration, problems)."""
    allowed, problems = [], []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        expand = getattr(migration, "contract_of", None)
        if app not in labels or not expand:
            continue
        expand_key = tuple(str(expand).split(".", 1))
        if expand_key not in loader.graph.nodes:
            problems.append(f"{app}.{name}: contract_of names {expand!r}, which is not a migration")
        elif expand_key not in loader.graph.forwards_plan((app, name)):
            problems.append(f"{app}.{name}: contract_of {expand!r} must come before it")
        else:
            allowed.append(name)
    return allowed, problems


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--apps", nargs="+", help="only these apps (default: the project's own)")

    def handle(self, *args, apps=None, **options):
        try:
            from django_migration_linter import MigrationLinter
        except ImportError:
            raise CommandError("django-migration-linter is not installed (requirements-dev.txt)", returncode=2)
        labels = apps or project_apps()
        loader = MigrationLoader(None, ignore_no_migrations=True)  # the files only: no database needed
        contracts, problems = contract_steps(loader, labels)
        for problem in problems:
            self.stderr.write(problem)
        linter = MigrationLinter(
            str(settings.BASE_DIR),
            include_apps=labels,
            ignore_name=contracts,
            ignore_initial_migrations=True,  # a new app's tables: no older code uses them
            no_cache=True,
            quiet=["ok", "ignore"],
        )
        linter.lint_all_migrations()
        linter.print_summary()
        if linter.has_errors or problems:
            raise CommandError(
                "Backward-incompatible migrations (see above). Split them into expand and contract steps "
                "and mark the contract step with `contract_of` (docs/migrations.md).",
                returncode=1,
            )
