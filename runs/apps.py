from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from runs.events import sink_register
        from runs.metrics import collector_register, events_count
        from runs.undelivered import handlers_register  # models are loaded only now

        handlers_register()
        sink_register(events_count)  # counts status changes and step durations in the shared store
        collector_register()  # the engine metrics on /metrics
