import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from core.checks import serve_checks_run  # noqa: E402

serve_checks_run()  # refuses to serve without SECRET_KEY or FIELD_ENCRYPTION_KEY (core.E001, E002), first of all
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from config.asgi_handler import SyncChainASGIHandler  # noqa: E402

django_application = SyncChainASGIHandler()  # the middleware chain in one thread hop (config/asgi_handler.py)

from django.conf import settings  # noqa: E402

# No persistent connections under ASGI: each request's sync code runs in a thread of its own, so a
# connection kept for reuse would never be reused, only left open until garbage collection (measured:
# 100 concurrent requests left 59 sessions open). Each request closes its connection when it ends:
# on PostgreSQL it gives it back to a pool (DATABASE_POOL_SIZE) rather than ending the session, because
# a new session per request cost more than the rest of an execute (docs/performance.md).
for database in settings.DATABASES.values():
    database["CONN_MAX_AGE"] = 0
    if database["ENGINE"] == "django.db.backends.postgresql" and settings.DATABASE_POOL_SIZE:
        size = settings.DATABASE_POOL_SIZE
        database["OPTIONS"]["pool"] = {"min_size": min(2, size), "max_size": size, "timeout": 10}

from config.asgi_gate import RequestGate, outside_the_loop  # noqa: E402
from core.schema import migrate_on_start  # noqa: E402 - needs the apps loaded

# The one process that migrates at start; the others wait (docs/migrations.md). uvicorn's worker
# processes import this module inside their event loop, where the ORM refuses to run: hence a thread.
outside_the_loop(migrate_on_start, "web")


# Under ASGI, Django runs each request's sync code (middleware, DRF views) in a thread of its own, with a
# database connection of its own: without a bound, 1,000 clients connecting at once would be 1,000
# threads and connections. The gate lets WEB_MAX_ACTIVE_REQUESTS requests per process be handled at once
# until their response starts; a live event stream then waits on the event loop, outside the bound.
application = RequestGate(django_application)
