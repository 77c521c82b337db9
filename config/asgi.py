import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from core.checks import serve_checks_run  # noqa: E402

serve_checks_run()  # refuses to serve without SECRET_KEY or FIELD_ENCRYPTION_KEY (core.E001, E002), first of all
application = get_asgi_application()

from core.schema import migrate_on_start  # noqa: E402 - needs the apps loaded

migrate_on_start("web")  # the one process that migrates at start; the others wait (docs/migrations.md)
