import signal
import socket

import uvicorn
from django.core.management.base import BaseCommand

from demo.agent import SKILLS, build_app


class Command(BaseCommand):
    help = "Runs the demo A2A agent (A2A 1.0 and 0.3 JSON-RPC) until SIGTERM or Ctrl-C."
    requires_system_checks = []  # the agent needs no database, so it can run where there is none

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
        parser.add_argument("--base-url", help="URL clients use to reach the agent, for its agent cards")

    def handle(self, *args, host, port, base_url, **options):
        # Binding first makes --port 0 usable: the real port is known before the cards are built.
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it a keep-alive response written in two parts
        # waits for the client's delayed ACK (40 ms per call).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        # Listening before the "listening on" line: a client that connects as soon as it reads it must
        # not be refused while uvicorn is still starting (seen in CI, on a loaded machine).
        sock.listen(2048)
        port = sock.getsockname()[1]
        url = (base_url or f"http://{host}:{port}").rstrip("/")
        server = uvicorn.Server(uvicorn.Config(build_app(url), log_level="warning", lifespan="off"))
        # uvicorn re-raises the signal that stopped it once it has shut down; these no-ops make that a clean exit.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        self.stdout.write(f"Demo agent listening on {url}/ (skills also at {url}/<skill>: {', '.join(SKILLS)})")
        self.stdout.flush()
        server.run(sockets=[sock])
        self.stdout.write("Demo agent stopped")
