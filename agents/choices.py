from django.db import models


class AgentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    DELETED = "deleted", "Deleted"


# Not deleted: what `Agent.objects.live()` returns.
LIVE_STATUSES = [AgentStatus.ACTIVE, AgentStatus.INACTIVE]


class AuthType(models.TextChoices):
    NONE = "none", "None"
    BEARER = "bearer", "Bearer token"
    APIKEY = "apikey", "API key header"


DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_RETRY_CONFIG = {"max_retries": 3, "initial_delay_ms": 1000, "max_delay_ms": 30_000, "backoff_multiplier": 2.0}
# auth_config keys that hold secrets: write-only, masked in every response.
SECRET_AUTH_KEYS = {"token", "key"}
MASK = "********"
