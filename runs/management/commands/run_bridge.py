import gc

from django.core.management.base import BaseCommand

from core.schema import schema_wait
from runs.bridge import Bridge


class Command(BaseCommand):
    help = "Run the HTTP-Kafka bridge: consumes agent tasks, calls agents over A2A, publishes agent results."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Handle what is waiting, then exit (for tests).")

    def handle(self, *args, once, **options):
        schema_wait("bridge")
        # What is loaded by now (modules, settings, the app registry) lives as long as the process:
        # frozen, the collector no longer walks it at every full collection (docs/performance.md).
        gc.collect()
        gc.freeze()
        Bridge().run(once=once)
