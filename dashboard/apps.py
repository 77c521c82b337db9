from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The admin index as the operator's dashboard (dashboard/sections.py). No models: it reads the
    runs, agents, outbox and webhooks tables, so it sits above them all."""

    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from django.contrib import admin

        # unfold, ahead of every app in INSTALLED_APPS, has its own admin/index.html, which an app's
        # template of that name cannot override; the site is told which template its index uses.
        admin.site.index_template = "dashboard/index.html"
