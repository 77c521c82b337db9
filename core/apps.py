from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from django.core import checks
        from django.db.backends.signals import connection_created

        from core.admin_paging import headers_once
        from core.checks import encryption_key_check, secret_key_check
        from core.db import fast_timestamps
        from core.folders import local_folders_create
        from core.logs import celery_hook as celery_logs_hook
        from core.tracing import celery_hook

        checks.register(secret_key_check, checks.Tags.security, deploy=True)
        checks.register(encryption_key_check, checks.Tags.security, deploy=True)
        local_folders_create()
        celery_hook()  # each Celery worker process sets up its tracing (when OTEL_EXPORTER_OTLP_ENDPOINT is set)
        celery_logs_hook()  # LOG_FORMAT=json in the worker and beat too
        connection_created.connect(fast_timestamps, dispatch_uid="core.fast_timestamps")
        headers_once()  # list pages: the theme's column headers worked out once per page, not per cell
