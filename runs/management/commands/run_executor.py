import gc

from django.core.management.base import BaseCommand

from core.schema import schema_wait
from runs.executor import Executor


class Command(BaseCommand):
    help = "Run the workflow executor: consumes execution/cancellation requests and agent results (Kafka)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Handle what is waiting, then exit (for tests).")

    def handle(self, *args, once, **options):
        schema_wait("executor")
        # What is loaded by now (modules, settings, the app registry) lives as long as the process:
        # frozen, the collector no longer walks it at every full collection (docs/performance.md).
        gc.collect()
        gc.freeze()
        Executor().run(once=once)
