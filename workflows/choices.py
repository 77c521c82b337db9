from django.db import models


class WorkflowStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    DELETED = "deleted", "Deleted"


# The parts of a workflow that make up a version: changing any of them creates a new version.
DEFINITION_FIELDS = ("name", "description", "start_step", "input_schema", "steps")
