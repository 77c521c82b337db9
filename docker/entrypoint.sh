#!/bin/sh
# Entry point of the image: the first argument names the process, further arguments are passed on.
#   web         apply migrations, then serve with gunicorn on :8000 (WEB_WORKERS workers, default 2)
#   worker      Celery worker
#   beat        Celery beat (periodic tasks)
#   executor    workflow executor (Kafka consumer)
#   bridge      agent bridge (Kafka consumer calling the agents)
#   demo-agent  demo A2A agent on :9000 (its cards advertise DEMO_AGENT_URL when set)
# Anything else is run as given (e.g. `python manage.py createsuperuser`).
set -e

if [ "$#" -eq 0 ]; then
    set -- web
fi

case "$1" in
    web)
        shift
        python manage.py migrate --noinput
        exec gunicorn config.wsgi --bind 0.0.0.0:8000 --workers "${WEB_WORKERS:-2}" --access-logfile - "$@"
        ;;
    worker)
        shift
        exec celery -A config worker --loglevel INFO "$@"
        ;;
    beat)
        shift
        exec celery -A config beat --loglevel INFO --schedule /tmp/celerybeat-schedule "$@"
        ;;
    executor)
        shift
        exec python manage.py run_executor "$@"
        ;;
    bridge)
        shift
        exec python manage.py run_bridge "$@"
        ;;
    demo-agent)
        shift
        # The agent cards carry the URL the other containers reach it at (DEMO_AGENT_URL), not 0.0.0.0.
        if [ -n "${DEMO_AGENT_URL:-}" ]; then
            set -- --base-url "$DEMO_AGENT_URL" "$@"
        fi
        exec python manage.py run_demo_agent --host 0.0.0.0 --port 9000 "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
