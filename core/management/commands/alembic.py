"""`python manage.py alembic <verb>`: Alembic's verbs on top of Django migrations (see core/schema.py)."""

import re

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from core import schema


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=2)


class Command(BaseCommand):
    help = (
        "Alembic's verbs on Django migrations: current, history, heads, upgrade, downgrade, revision, stamp. "
        "Revisions are short hashes of the set of applied migrations, shown with the migration that leads "
        "to each; the current one is recorded in the alembic_version table."
    )

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True, parser_class=type(parser))
        verbs.add_parser("current", help="the revision the database is at")
        verbs.add_parser("history", help="every revision, newest first")
        verbs.add_parser("heads", help="the newest revision")
        upgrade = verbs.add_parser("upgrade", help="head, +N or a revision")
        upgrade.add_argument("revision")
        downgrade = verbs.add_parser("downgrade", help="-N, a revision or base")
        downgrade.add_argument("revision")
        stamp = verbs.add_parser("stamp", help="record a revision without running migrations")
        stamp.add_argument("revision")
        revision = verbs.add_parser("revision", help="create a named migration")
        revision.add_argument("-m", "--message", required=True)
        revision.add_argument("--autogenerate", action="store_true", help="from the model changes")
        revision.add_argument(
            "--app", help="the app of an empty migration (without --autogenerate; default: ALEMBIC_DEFAULT_APP)"
        )

    def handle(self, *args, verb, **options):
        getattr(self, f"do_{verb}")(**options)

    # -- reading -------------------------------------------------------------------------------

    def line(self, revision: schema.Revision, state: schema.State) -> str:
        marks = []
        if revision.id == state.head.id:
            marks.append("head")
        if state.current is not None and revision.id == state.current.id:
            marks.append("current")
        migration = ".".join(revision.migration) if revision.migration else "(no migrations)"
        mark = f" ({', '.join(marks)})" if marks else ""
        return f"{revision.down or '<base>'} -> {revision.id}{mark}, {migration}"

    def do_current(self, **options):
        state = schema.state()
        if state.current is None:
            raise CommandError(
                f"The database ({schema.revision_id(state.applied)}) is not on the linear history: its "
                "migrations were applied app by app. `alembic upgrade head` brings it back.",
                returncode=1,
            )
        current = state.current
        migration = ".".join(current.migration) if current.migration else "(no migrations)"
        self.stdout.write(f"{current.id}{' (head)' if current.id == state.head.id else ''}, {migration}")
        recorded = schema.version_table_read()
        if recorded not in (None, current.id):
            self.stderr.write(f"alembic_version says {recorded}; run `alembic stamp {current.id}` to fix it")

    def do_history(self, **options):
        state = schema.state()
        for revision in reversed(state.revisions[1:]):
            self.stdout.write(self.line(revision, state))

    def do_heads(self, **options):
        state = schema.state()
        self.stdout.write(f"{state.head.id} (head), {'.'.join(state.head.migration or ('', ''))}")

    # -- changing ------------------------------------------------------------------------------

    def resolve(self, text: str, state: schema.State, *, direction: int) -> int:
        """The index of the revision `text` names: head, base, +N/-N, a revision id (or a unique prefix of
        one), or a migration as app.name."""
        current = state.current
        if text == "head" or text == "heads":
            return len(state.plan)
        if text == "base":
            return 0
        relative = re.fullmatch(r"([+-])(\d+)", text)
        if relative:
            if current is None:
                raise usage_error("Relative revisions need a database on the linear history; upgrade head first.")
            sign = 1 if relative.group(1) == "+" else -1
            if direction and sign != direction:
                raise usage_error(f"{text!r} goes the wrong way for this verb.")
            index = current.index + sign * int(relative.group(2))
            if index < 0:
                raise usage_error(f"Cannot go {relative.group(2)} below the current revision: that is below base.")
            if index > len(state.plan):
                raise usage_error(f"Cannot go {relative.group(2)} above the current revision: that is past head.")
            return index
        if "." in text:
            app, _, name = text.partition(".")
            for revision in state.revisions[1:]:
                if revision.migration == (app, name):
                    return revision.index
            raise usage_error(f"No migration {text!r}.")
        found = [r for r in state.revisions if r.id.startswith(text.lower())] if len(text) >= 4 else []
        if len(found) == 1:
            return found[0].index
        if len(found) > 1:
            raise usage_error(f"Revision {text!r} is ambiguous: {', '.join(r.id for r in found)}.")
        raise usage_error(f"Unknown revision {text!r}. See `alembic history`.")

    def move(self, revision: str, *, direction: int, fake: bool = False) -> None:
        with schema.schema_lock():
            state = schema.state()
            target = self.resolve(revision, state, direction=direction)
            current = state.current
            if current is not None and direction > 0 and target < current.index:
                raise usage_error(f"{revision!r} is below the current revision; use downgrade.")
            if current is not None and direction < 0 and target > current.index:
                raise usage_error(f"{revision!r} is above the current revision; use upgrade.")
            changed = schema.migrate_to(target, fake=fake)
        verb = {1: "Applied", -1: "Unapplied"}.get(direction, "Stamped")
        for app, name in changed:
            self.stdout.write(f"  {verb.lower()} {app}.{name}")
        self.stdout.write(f"{verb} {len(changed)} migration(s); now at {schema.state().current_id}")

    def do_upgrade(self, revision, **options):
        self.move(revision, direction=1)

    def do_downgrade(self, revision, **options):
        self.move(revision, direction=-1)

    def do_stamp(self, revision, **options):
        with schema.schema_lock():
            state = schema.state()
            target = self.resolve(revision, state, direction=0)
            schema.migrate_to(target, fake=True)
        self.stdout.write(f"Stamped {schema.state().current_id} (no migration ran)")

    def do_revision(self, message, autogenerate, app, **options):
        name = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:60]
        if not name:
            raise usage_error("The message must contain letters or digits (it names the migration).")
        if autogenerate:
            call_command("makemigrations", name=name, stdout=self.stdout)
            return
        app = app or settings.ALEMBIC_DEFAULT_APP
        if not app:
            raise usage_error("An empty revision needs --app or ALEMBIC_DEFAULT_APP (or use --autogenerate).")
        call_command("makemigrations", app, empty=True, name=name, stdout=self.stdout)
