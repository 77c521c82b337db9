from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from django.core import checks

        from core.checks import encryption_key_check, secret_key_check
        from core.folders import local_folders_create

        checks.register(secret_key_check, checks.Tags.security, deploy=True)
        checks.register(encryption_key_check, checks.Tags.security, deploy=True)
        local_folders_create()
