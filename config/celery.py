"""The Celery app: `celery -A config worker` relays the outbox, `celery -A config beat` runs the periodic tasks."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _migrate_on_start(sender=None, **kwargs):
    import django

    django.setup()
    from core.schema import migrate_on_start

    migrate_on_start("celery")
