"""The Celery app: `celery -A config worker` relays the outbox, `celery -A config beat` runs the periodic tasks."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _make_filesystem_queue(sender, **kwargs):
    # kombu's filesystem transport expects its folders to exist.
    for folder in (sender.conf.broker_transport_options or {}).values():
        if isinstance(folder, str) and ("/" in folder or os.sep in folder):
            Path(folder).mkdir(parents=True, exist_ok=True)
