"""Settings for every process (web, worker, beat, executor, bridge), driven by the environment.

The defaults give the embedded quick start (SQLite file, no external servers). Production sets
DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS and SECRET_KEY. See the configuration table in
README.md.

Importing this module creates nothing on disk: the folders it names are made at Django setup
(core/folders.py, from CoreConfig.ready()). The one exception is development without a SECRET_KEY,
whose random key is kept in DATA_DIR/secret_key (config/secret_key.py).
"""

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import cors, doc_pages
from config.admin_theme import UNFOLD  # noqa: F401 (a setting)
from config.encryption_key import development_encryption_keys, encryption_keys
from config.env import env_bool, env_int, env_int_list, env_list, env_str
from config.secret_key import development_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / ".data")))

DEBUG = env_bool("DEBUG", False)
# Serving without a secret is refused: the core.E001 check (core/checks.py), run by config/wsgi.py and
# asgi.py and by `manage.py check --deploy`. Other commands (makemigrations, migrate) get a random key
# of their own: they sign nothing that outlives the process. Development (DEBUG=1) gets a random key
# kept in the data directory, the same at every start; never a constant, which would be public.
SECRET_KEY_MISSING = not env_str("SECRET_KEY") and not DEBUG
SECRET_KEY = env_str("SECRET_KEY") or (development_secret_key(DATA_DIR) if DEBUG else secrets.token_urlsafe(50))
# Fernet keys for secrets at rest (agent tokens and keys, webhook signing secrets; core/crypto.py): the
# first encrypts, all decrypt (config/encryption_key.py). Like SECRET_KEY, serving without one is refused
# (core.E002) and development keeps a random one in DATA_DIR; other commands get none (never a random
# key: what it encrypted would be lost with the process), and fail only if they touch a secret.
FIELD_ENCRYPTION_KEY = encryption_keys(env_str("FIELD_ENCRYPTION_KEY")) or (
    development_encryption_keys(DATA_DIR) if DEBUG else []
)
FIELD_ENCRYPTION_KEY_MISSING = not FIELD_ENCRYPTION_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Browser apps on these origins may call the API (config/cors.py); empty: none.
CORS_ALLOWED_ORIGINS = cors.allowed_origins(env_list("CORS_ALLOWED_ORIGINS", []))
CORS_ALLOW_HEADERS = cors.ALLOW_HEADERS
CORS_EXPOSE_HEADERS = cors.EXPOSE_HEADERS
CORS_URLS_REGEX = cors.URLS_REGEX

INSTALLED_APPS = [
    # The admin's theme (config/admin_theme.py); ahead of django.contrib.admin, whose templates it overrides.
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.simple_history",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_api_key",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "simple_history",
    "core",
    "audit",
    "agents",
    "workflows",
    "runs",
    "webhooks",
    "schedules",
    "dashboard",
    "demo",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestIdMiddleware",
    # Before anything that answers on its own (413, auth): preflights and errors get the CORS headers.
    "corsheaders.middleware.CorsMiddleware",
    # A span per request when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT; core/tracing.py).
    "core.tracing.TracingMiddleware",
    "core.api.limits.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Request bodies larger than this are refused with 413 (workflow definitions and run inputs included).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_048_576, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES  # the same limit for forms (the admin)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
# API paths have no trailing slash and accept one without redirecting (clients POST).
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and the background processes share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not SQLite's shared in-memory database, so tests with threads wait on locks instead of failing.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT", 5, minimum=1
    )
    if env_bool("DATABASE_SERVER_SIDE_BINDING", True):
        # Parameters sent apart from the SQL, and a statement run 5 times on a connection prepared, so
        # PostgreSQL parses and plans it once: a third less of its CPU per step (docs/performance.md).
        # Off (0) behind a pooler in transaction mode that cannot keep prepared statements.
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
# The web process under ASGI keeps no connection per thread (config/asgi.py): it takes them from a
# psycopg pool of this many per process instead of opening one per request (docs/performance.md has
# the figures). 0: no pool. Other processes keep their persistent connections (DATABASE_CONN_MAX_AGE).
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 20, minimum=0, maximum=500)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL") or None
KAFKA_BOOTSTRAP_SERVERS = env_list("KAFKA_BOOTSTRAP_SERVERS", [])

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Files, not process memory: the web workers, Celery and the executor share what they cache
    # (throttle counters, the outbox relay flag) on the one machine of the embedded default.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the apps, so the quick start needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Headers on every answer (Django's SecurityMiddleware and XFrameOptionsMiddleware).
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = env_str("SECURE_REFERRER_POLICY", "same-origin")
SESSION_COOKIE_HTTPONLY = True
# HTTPS=1: the site is served over HTTPS (by this server or a proxy in front). Cookies are then sent over
# HTTPS only, and plain HTTP is redirected, except the probes and Prometheus, which call over plain HTTP
# inside the network. (SECURE_COOKIES=1, the older setting, makes the cookies secure and nothing else.)
# HSTS is separate and off by default: once a browser has seen it, the site cannot go back to plain HTTP
# for that long.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS or env_bool("SECURE_COOKIES", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^health/?$", r"^health/ready/?$", r"^metrics/?$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a proxy that terminates HTTPS: it says so in X-Forwarded-Proto (and must overwrite what clients send).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO") else None
# How many reverse proxies append to X-Forwarded-For in front of the web server. The client address of
# the audit trail and the login throttles is the socket's (0) or the one the outermost proxy saw; never an
# entry the client wrote itself. TRUST_X_FORWARDED_FOR=1 is the older name for one proxy.
NUM_PROXIES = env_int("NUM_PROXIES", 1 if env_bool("TRUST_X_FORWARDED_FOR") else 0, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The first class decides the WWW-Authenticate header, which turns 403 into 401.
        "core.authentication.ApiKeyAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.HasRole"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "core.api.filters.FilterBackend",
        "core.api.ordering.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "core.api.renderers.JSONRenderer",  # orjson: the same bytes, faster
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON only: a form, multipart or text body is a 415 that says to send JSON (core.api.exceptions).
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],  # no NUL in strings (PostgreSQL)
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"auth": env_str("AUTH_THROTTLE_RATE", "30/min")},
    "NUM_PROXIES": NUM_PROXIES,  # DRF's default (None) would take any X-Forwarded-For as the client
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1, minimum=1)),
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY") or SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Workflow Management API",
    "DESCRIPTION": (
        "Register A2A agents, design workflows, execute them and monitor the runs.\n\n"
        "Authenticate with an API key (`X-API-Key: <key>` or `Authorization: Api-Key <key>`), "
        "a JWT from `POST /api/v1/auth/token` (`Authorization: Bearer <access>`), or a Django "
        "session. Roles: viewer < operator < editor < admin. Every error has the same body "
        "(`Error`); validation errors are 422 with field paths."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.0.3",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": doc_pages.SWAGGER_UI_SETTINGS,
    "REDOC_UI_SETTINGS": doc_pages.REDOC_UI_SETTINGS,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.strip_optional_trailing_slash",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "core.roles.Role.choices",
        "RunStatusEnum": "runs.choices.RunStatus.choices",  # Run, RunAction and RunRetry share it
        "LifecycleStatusEnum": ["active", "inactive"],
        "CheckStatusEnum": ["ok", "error"],
        "CircuitStateEnum": ["closed", "open", "half_open", "unknown"],
    },
}

# The web process applies pending migrations before serving (under a lock, so replicas starting
# together migrate once); worker, beat, executor and bridge wait until they are applied, whatever this
# says. Turn off when migrations are a deploy step.
MIGRATE_ON_START = env_bool("MIGRATE_ON_START", True)
# Where `manage.py alembic revision -m MSG` writes an empty revision when --app is not given (empty:
# --app is required).
ALEMBIC_DEFAULT_APP = env_str("ALEMBIC_DEFAULT_APP", "core")

# Kafka: topic names and consumer groups of the wire contract (docs: wire-contract in the README).
KAFKA_EXECUTION_TOPIC = env_str("KAFKA_EXECUTION_TOPIC", "workflow.execution.requests")
KAFKA_CANCELLATION_TOPIC = env_str("KAFKA_CANCELLATION_TOPIC", "workflow.cancellation.requests")
KAFKA_TASKS_TOPIC = env_str("KAFKA_TASKS_TOPIC", "orchestrator.tasks.http")
KAFKA_RESULTS_TOPIC = env_str("KAFKA_RESULTS_TOPIC", "results.topic")
KAFKA_MONITORING_TOPIC = env_str("KAFKA_MONITORING_TOPIC", "workflow.monitoring.updates")
KAFKA_EXECUTOR_GROUP = env_str("KAFKA_EXECUTOR_GROUP", "execution-consumer-group")
KAFKA_BRIDGE_GROUP = env_str("KAFKA_BRIDGE_GROUP", "external-agent-executor-group")
# 4 is also what the embedded broker gives a topic it creates on first write (after restarting empty):
# the same count keeps every run id on the partition it hashed to before.
KAFKA_TOPIC_PARTITIONS = env_int("KAFKA_TOPIC_PARTITIONS", 4, minimum=1)
# With the embedded broker a consumer group join waits for this long: keep it small in dev/test.
KAFKA_MAX_POLL_INTERVAL_MS = env_int("KAFKA_MAX_POLL_INTERVAL_MS", 300_000, minimum=1000)
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 10_000, minimum=1000)
KAFKA_FETCH_MAX_WAIT_MS = env_int("KAFKA_FETCH_MAX_WAIT_MS", 100, minimum=1)
# How long the API, the relay and the executor wait for the broker before giving up on a send.
KAFKA_SEND_TIMEOUT_SECONDS = env_int("KAFKA_SEND_TIMEOUT_SECONDS", 10, minimum=1)
# The largest message we send (the producer's max_request_size, our topics' max.message.bytes): above
# the API's body limit, so any accepted input fits in its execution request. A message that is still
# too large fails its step or run with that reason. Apache Kafka brokers need message.max.bytes as large.
KAFKA_MAX_MESSAGE_BYTES = env_int("KAFKA_MAX_MESSAGE_BYTES", 8_388_608, minimum=65_536)
# How often the executor and the bridge check whether the broker lost its messages (it restarted
# empty): the logs' ends moved back. The executor then sends the work in flight again.
KAFKA_LOSS_CHECK_SECONDS = env_int("KAFKA_LOSS_CHECK_SECONDS", 1, minimum=1)
# ...and again this many seconds after the loss, for the runs still in flight: a message written just
# as the broker came back may be lost too (the embedded broker can drop a partition's first batch).
KAFKA_LOSS_RESEND_AGAIN_SECONDS = env_int_list("KAFKA_LOSS_RESEND_AGAIN_SECONDS", [5, 20], minimum=1)

# Outbox: rows the relay could not send are retried with backoff up to this delay.
OUTBOX_MAX_BACKOFF_SECONDS = env_int("OUTBOX_MAX_BACKOFF_SECONDS", 300, minimum=1)
OUTBOX_SWEEP_SECONDS = env_int("OUTBOX_SWEEP_SECONDS", 5, minimum=1)
# After this many failed sends a row is dead: visible in the admin with its error, no longer retried.
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 50, minimum=1)

# Executor: a run nobody has touched for this long is re-requested by the recovery task.
EXECUTOR_LEASE_SECONDS = env_int("EXECUTOR_LEASE_SECONDS", 60, minimum=1)
# A step's deadline is its timeout plus this grace (the bridge reports its own timeouts first).
EXECUTOR_STEP_GRACE_SECONDS = env_int("EXECUTOR_STEP_GRACE_SECONDS", 15, minimum=0)
EXECUTOR_TICK_SECONDS = env_int("EXECUTOR_TICK_SECONDS", 1, minimum=1)
# A message met by a passing database error (connection lost, deadlock) is tried this many times, then
# skipped (its step's deadline and the run's lease still end the run); other database errors at once.
EXECUTOR_TRANSIENT_RETRIES = env_int("EXECUTOR_TRANSIENT_RETRIES", 10, minimum=1)
# The messages of one poll handled in one transaction (runs/executor.py batch_handle): one commit for
# many results; 1 gives each message its own transaction. Locks are held until the group commits.
EXECUTOR_GROUP_MAX = env_int("EXECUTOR_GROUP_MAX", 50, minimum=1, maximum=500)
RUN_RECOVERY_SECONDS = env_int("RUN_RECOVERY_SECONDS", 30, minimum=1)
# How often beat folds the run counters' deltas (runs/counts.py): the lists read the unfolded ones too,
# so this bounds their number (about 5 per run and second), not the totals' exactness.
RUN_COUNTS_FOLD_SECONDS = env_int("RUN_COUNTS_FOLD_SECONDS", 5, minimum=1, maximum=3600)
# Bridge: agent calls in flight at once per bridge process.
BRIDGE_MAX_IN_FLIGHT = env_int("BRIDGE_MAX_IN_FLIGHT", 100, minimum=1)
# Tasks held beyond those calls while they wait for an agent at its max_concurrency, so the bridge
# keeps consuming tasks for the other agents (bounds the bridge's memory; their offsets wait too).
BRIDGE_MAX_WAITING = env_int("BRIDGE_MAX_WAITING", 1000, minimum=0)
# The answers a bridge sent lately, kept (up to this many bytes) so that a task sent again after the
# broker lost its messages gets the same answer again instead of a second agent call.
BRIDGE_RECENT_ANSWERS_BYTES = env_int("BRIDGE_RECENT_ANSWERS_BYTES", 64 * 1024 * 1024, minimum=0)
# While calls are in flight, the bridge asks this often which of their steps ended (cancelled, timed
# out) and abandons those calls (runs/abandon.py): one query for all of them.
BRIDGE_ABANDON_CHECK_MS = env_int("BRIDGE_ABANDON_CHECK_MS", 1000, minimum=50)
# Agent tasks (A2A) the bridge follows at once after their call answered `submitted` / `working`: they
# hold no call slot, only a place among these (docs/execution.md "Long-running A2A tasks").
BRIDGE_MAX_FOLLOWING = env_int("BRIDGE_MAX_FOLLOWING", 1000, minimum=1)
# Polling such a task (when its agent does not stream): first wait, doubled up to the cap. A finished
# task is seen half a wait late on average: the cap keeps that near 250 ms, at 2 polls a second per task.
A2A_POLL_INITIAL_MS = env_int("A2A_POLL_INITIAL_MS", 200, minimum=10)
A2A_POLL_MAX_MS = env_int("A2A_POLL_MAX_MS", 500, minimum=10)
# Agents' circuit breakers (their `circuit_breaker_config`); off: every bridge calls agents without them.
CIRCUIT_BREAKER_ENABLED = env_bool("CIRCUIT_BREAKER_ENABLED", True)
# The most of one agent answer the bridge reads; a larger one fails the step (not retried).
AGENT_RESPONSE_MAX_BYTES = env_int("AGENT_RESPONSE_MAX_BYTES", 4_194_304, minimum=1024)
# GET /agents/{id}/health (viewers may call it) ends within this, whatever the agent's own timeout:
# it runs in a web worker, and a slow agent must not hold one for minutes.
AGENT_HEALTH_TIMEOUT_SECONDS = env_int("AGENT_HEALTH_TIMEOUT_SECONDS", 5, minimum=1, maximum=30)

# Webhooks: each attempt's time limit, how much of a response is kept, whether URLs may point at
# loopback / private / link-local addresses (off: users could make the server call its own network),
# how often due retries are swept, and how many requests one worker task has in flight.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
WEBHOOK_RESPONSE_LIMIT_BYTES = env_int("WEBHOOK_RESPONSE_LIMIT_BYTES", 4096, minimum=0, maximum=1_048_576)
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
WEBHOOK_SWEEP_SECONDS = env_int("WEBHOOK_SWEEP_SECONDS", 5, minimum=1)
WEBHOOK_MAX_IN_FLIGHT = env_int("WEBHOOK_MAX_IN_FLIGHT", 32, minimum=1, maximum=200)

# Live events (runs/live.py, docs/events.md): how often each web process reads new events for its open
# streams (one query per process, whatever the number of streams), how long a missing id may hold back
# the ones after it (a transaction that has not committed yet, or one rolled back), keep-alive comments.
SSE_POLL_INTERVAL_MS = env_int("SSE_POLL_INTERVAL_MS", 50, minimum=10, maximum=5000)
SSE_GAP_WAIT_MS = env_int("SSE_GAP_WAIT_MS", 1000, minimum=0, maximum=60000)
SSE_KEEPALIVE_SECONDS = env_int("SSE_KEEPALIVE_SECONDS", 15, minimum=1, maximum=15)
# Requests one web process handles at once until their response starts (config/asgi_gate.py): each holds
# a thread and a database connection meanwhile; open event streams do not count.
WEB_MAX_ACTIVE_REQUESTS = env_int("WEB_MAX_ACTIVE_REQUESTS", 16, minimum=1, maximum=1000)

# Schedules: how often beat asks a worker to start the due ones (a run starts at most about this late)
# and how many schedules one transaction claims.
SCHEDULE_TICK_SECONDS = env_int("SCHEDULE_TICK_SECONDS", 1, minimum=1, maximum=60)
SCHEDULE_BATCH_SIZE = env_int("SCHEDULE_BATCH_SIZE", 50, minimum=1, maximum=1000)

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport (no server needed).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_DATA_DIR = Path(env_str("CELERY_DATA_DIR", str(DATA_DIR / "celery")))
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT = "core.celery_transport:Transport"  # atomic message files
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "processed_folder": str(CELERY_DATA_DIR / "processed"),
        "control_folder": str(CELERY_DATA_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
CELERY_TASK_IGNORE_RESULT = True
# Under DATA_DIR, writable in development (.data) and in the image (/app/.data); bin/process passes no --schedule.
CELERY_BEAT_SCHEDULE_FILENAME = str(CELERY_DATA_DIR / "beat-schedule")
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "core.tasks.outbox_sweep", "schedule": float(OUTBOX_SWEEP_SECONDS)},
    "run-recovery": {"task": "runs.tasks.runs_recover", "schedule": float(RUN_RECOVERY_SECONDS)},
    "run-counts-fold": {
        "task": "runs.tasks.run_counts_fold",
        "schedule": float(RUN_COUNTS_FOLD_SECONDS),
        "options": {"expires": float(RUN_COUNTS_FOLD_SECONDS)},
    },
    "audit-purge": {"task": "audit.tasks.audit_purge_old", "schedule": 24 * 3600.0},
    "event-purge": {"task": "runs.tasks.events_purge_old", "schedule": 24 * 3600.0},
    "idempotency-purge": {"task": "runs.tasks.idempotency_keys_purge", "schedule": 3600.0},
    "webhook-deliveries": {"task": "webhooks.tasks.webhook_deliveries_sweep", "schedule": float(WEBHOOK_SWEEP_SECONDS)},
    # Expires: ticks that waited longer than a period for a worker are dropped, not piled up.
    "schedules": {
        "task": "schedules.tasks.schedules_tick",
        "schedule": float(SCHEDULE_TICK_SECONDS),
        "options": {"expires": float(SCHEDULE_TICK_SECONDS)},
    },
}

# Registered as an agent by `manage.py quickstart` when set (the one-command system sets it).
DEMO_AGENT_URL = env_str("DEMO_AGENT_URL") or None

# Audit events older than this are purged; compliance needs at least 90 days.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365, minimum=90)
# Events (and the webhook deliveries made from them) older than this are purged; at least a week, so
# that webhook retries (about three days) always finish first.
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 30, minimum=7)
# How long an Idempotency-Key of execute answers with its first run (runs/idempotency.py); purged hourly.
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24, minimum=1)

# /metrics needs no credentials unless a token is set (then: Authorization: Bearer <token>).
METRICS_TOKEN = env_str("METRICS_TOKEN") or None
# The engine metrics (runs, outbox backlog, consumer lag; runs/metrics.py) a scrape reads are kept this
# long in the shared cache, so many scrapers cost the database one read per period; 0: read each time.
ENGINE_METRICS_CACHE_SECONDS = env_int("ENGINE_METRICS_CACHE_SECONDS", 5, minimum=0)
# Each dependency named here gets a check entry in /health/ready.
READINESS_TIMEOUT_SECONDS = env_int("READINESS_TIMEOUT_SECONDS", 2, minimum=1)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
# "plain" (text lines) or "json" (one JSON object per line, with request_id, run_id, step_id when known).
LOG_FORMAT = env_str("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.middleware.RequestIdLogFilter"},
        "log_context": {"()": "core.logs.LogContextFilter"},  # run_id, step_id, trace_id
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "log_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Our own handler logs 500s with the request id; Django's would log them a second time.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        # kafka-python narrates every rebalance and metadata refresh at INFO.
        "kafka": {"level": env_str("KAFKA_LOG_LEVEL", "WARNING").upper()},
        "django_migration_linter": {"level": "WARNING"},
    },
}
