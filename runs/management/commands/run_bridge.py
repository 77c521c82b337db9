from django.core.management.base import BaseCommand

from core.schema import schema_wait
from runs.bridge import Bridge


class Command(BaseCommand):
    help = "Run the HTTP-Kafka bridge: consumes agent tasks, calls agents over A2A, publishes agent results."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Handle what is waiting, then exit (for tests).")

    def handle(self, *args, once, **options):
        schema_wait("bridge")
        Bridge().run(once=once)
