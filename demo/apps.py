from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The one-command quick start: a demo A2A agent, its skills registered as agents, a sample workflow.

    It sits above every other app (it uses agents and workflows), so nothing below depends on it."""

    name = "demo"
    verbose_name = "Demo"
