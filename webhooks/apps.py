from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from runs.events import sink_register
        from webhooks.dispatch import deliveries_create

        # runs may not import webhooks (it is the lower layer), so the events come to us through this hook.
        sink_register(deliveries_create)
