from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self):
        from agents.breaker_metrics import collector_register

        collector_register()  # the agents' circuit breakers on /metrics
