from django.core.management.base import BaseCommand

from core.schema import schema_wait
from runs.executor import Executor


class Command(BaseCommand):
    help = "Run the workflow executor: consumes execution/cancellation requests and agent results (Kafka)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Handle what is waiting, then exit (for tests).")

    def handle(self, *args, once, **options):
        schema_wait("executor")
        Executor().run(once=once)
