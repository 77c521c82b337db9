# One image for every process of the platform: web, worker, beat, executor, bridge, demo-agent.
# The first argument names the process (bin/process, which also runs them for ./dev up); without one
# the web server starts.
#   docker build -t workflow-platform .
#   docker run -e SECRET_KEY=... -e DATABASE_URL=... -p 8000:8000 workflow-platform
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    HOST=0.0.0.0

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root, read-only for the app user. Static files are collected at build time
# (settings need a SECRET_KEY to load; this one exists for this command only). .data is the only
# writable folder (-R: collectstatic's Django setup may already have made its subfolders, as root): the
# SQLite fallback when DATABASE_URL is not set, the beat schedule, Celery's queue folders without Redis.
COPY . .
RUN chmod 0755 bin/process \
    && SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && mkdir -p /app/.data \
    && chown -R app:app /app/.data

USER app

EXPOSE 8000

# Liveness of the web server (python: the slim image has no curl). Compose turns it off for the
# processes that serve no HTTP.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

ENTRYPOINT ["bin/process"]
CMD ["web"]
