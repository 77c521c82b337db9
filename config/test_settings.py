"""Settings for the test suite: the normal settings plus a test secret and a fast password hasher."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# A fixed Fernet key, so the processes tests start (e2e, subprocesses) read what the tests wrote.
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "op8-kWiMfo94dJ6gWsMr-By9xT7QVPNjCMuh1vx13lI=")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Celery tasks run in-process in tests unless a test starts real workers (the end-to-end system does).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "1") == "1"

if not REDIS_URL:  # noqa: F405 - tests in one process; no cache files shared between parallel test workers
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    # One Redis for all parallel test workers: each worker's keys apart, so one worker's "a send is
    # already asked for" flag or throttle counter never changes what another worker's test sees.
    CACHES["default"]["KEY_PREFIX"] = "test-" + os.environ.get("PYTEST_XDIST_WORKER", "main")  # noqa: F405

# Test receivers listen on 127.0.0.1; tests/webhooks turn the address guard back on where they test it.
WEBHOOK_ALLOW_PRIVATE_URLS = True
