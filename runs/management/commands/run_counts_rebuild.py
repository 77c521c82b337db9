from django.core.management.base import BaseCommand

from runs.counts import counters_available, run_counts_fold, run_counts_rebuild


class Command(BaseCommand):
    help = (
        "Recounts every run into the runs list's counters (PostgreSQL; writes to runs wait meanwhile). "
        "With --fold: only fold the pending deltas, as beat does every RUN_COUNTS_FOLD_SECONDS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fold", action="store_true", help="fold the pending deltas instead of recounting")

    def handle(self, *args, fold=False, **options):
        if not counters_available():
            self.stdout.write("No run counters on this database (SQLite): the runs list counts rows.")
            return
        if fold:
            self.stdout.write(f"Folded into {run_counts_fold()} counter rows.")
            return
        self.stdout.write(f"Recounted {run_counts_rebuild()} runs.")
