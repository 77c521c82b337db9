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
def _schema_wait(sender=None, **kwargs):
    import django
    from django.apps import apps

    if not apps.ready:  # Celery's Django fixup has set up Django already; a second setup would reset the logging
        django.setup()
    from core.schema import schema_wait

    schema_wait("celery")  # the web process migrates; the worker and beat wait for it
