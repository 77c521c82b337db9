import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")}
    base["MIGRATE_ON_START"] = "0"  # importing the web app must not migrate the developer's database
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True)


def test_web_server_refuses_to_start_without_a_secret_key(tmp_path):
    result = run("import config.wsgi")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert run("import config.wsgi", SECRET_KEY="s3cret").returncode == 0
    assert run("import config.wsgi", DEBUG="1", DATA_DIR=str(tmp_path)).returncode == 0  # its key: tmp_path


def test_commands_that_sign_nothing_run_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def local_env(tmp_path, **env) -> dict[str, str]:
    """SQLite and Celery's filesystem transport, with every local folder under tmp_path/"local" (not made yet)."""
    names = ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    base = {k: v for k, v in os.environ.items() if k not in names and k != "CELERY_DATA_DIR"}
    local = tmp_path / "local"
    return {**base, "DATA_DIR": str(local / "data"), "STATIC_ROOT": str(local / "static"), **env}


def test_importing_the_settings_creates_no_folder(tmp_path):
    env = local_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", "import config.settings"], cwd=ROOT, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_django_setup_makes_the_folders_the_processes_need(tmp_path):
    # What every process does first (manage.py, gunicorn, Celery): the SQLite file can then be opened, and
    # the Celery filesystem transport's folders and beat's schedule folder exist before a worker starts.
    code = "import django; django.setup(); from django.db import connection; connection.ensure_connection()"
    env = local_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY="s3cret")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    local = tmp_path / "local"
    assert (local / "data" / "db.sqlite3").is_file()
    assert (local / "static").is_dir()
    for folder in ("queue", "control"):
        assert (local / "data" / "celery" / folder).is_dir(), folder


def test_check_deploy_reports_a_missing_secret_key(tmp_path):
    def check(**env):
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy"],
            cwd=ROOT,
            env=local_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", **env),
            capture_output=True,
            text=True,
        )

    missing = check()
    assert missing.returncode != 0
    assert "(core.E001) SECRET_KEY must be set when DEBUG is off" in missing.stderr
    given = check(SECRET_KEY=secrets.token_urlsafe(50))
    assert given.returncode == 0, given.stderr
    assert "core.E001" not in given.stdout + given.stderr
    assert "core.E001" not in check(DEBUG="1").stderr  # development needs no secret


PRINT_KEYS = (
    "import config.settings as s; print(s.SECRET_KEY); print(s.SIMPLE_JWT['SIGNING_KEY']); print(s.SECRET_KEY_MISSING)"
)


def test_development_without_a_secret_key_keeps_a_random_one_in_the_data_directory(tmp_path):
    """DEBUG=1 and no SECRET_KEY: never a constant (anyone could forge sessions and JWTs with it), but
    a random key kept in DATA_DIR/secret_key (0600), the same at every start, as ./dev up does."""

    def keys(data_dir):
        env = local_env(tmp_path, DEBUG="1", DATA_DIR=str(data_dir))
        done = subprocess.run([sys.executable, "-c", PRINT_KEYS], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        secret, signing, missing = done.stdout.split()
        assert signing == secret and missing == "False"
        return secret

    first = keys(tmp_path / "data")
    stored = tmp_path / "data" / "secret_key"
    assert stored.read_text().strip() == first and len(first) >= 50
    assert stored.stat().st_mode & 0o777 == 0o600
    assert keys(tmp_path / "data") == first  # reused at the next start
    assert keys(tmp_path / "elsewhere") != first  # each data directory its own
    assert "insecure" not in first


def test_a_secret_key_from_the_environment_wins_and_writes_nothing(tmp_path):
    env = local_env(tmp_path, DEBUG="1", SECRET_KEY="from-the-environment")
    done = subprocess.run([sys.executable, "-c", PRINT_KEYS], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.stdout.split()[0] == "from-the-environment"
    assert not (tmp_path / "local" / "data" / "secret_key").exists()


def production_env(tmp_path, **env) -> dict[str, str]:
    """What a production deployment sets: no debug, a strong secret, HTTPS with HSTS."""
    return local_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        HTTPS="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
        **env,
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


HEADERS = """
import json
import django
from django.conf import settings

django.setup()
from django.test import Client

client = Client()
answers = {
    "plain_api": client.get("/api/v1/agents"),
    "plain_health": client.get("/health"),
    "forwarded_https": client.get("/health", HTTP_X_FORWARDED_PROTO="https"),
    "secure_login": client.get("/admin/login/", secure=True),
}
print(json.dumps({
    "answers": {
        name: {"status": r.status_code, "location": r.get("Location"), "headers": dict(r.headers),
               "csrf_cookie_secure": bool(r.cookies["csrftoken"]["secure"]) if "csrftoken" in r.cookies else None}
        for name, r in answers.items()
    },
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
}))
"""


def headers(env) -> dict:
    done = subprocess.run([sys.executable, "-c", HEADERS], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_https_turns_on_redirects_hsts_and_secure_cookies(tmp_path):
    seen = headers(production_env(tmp_path, TRUST_X_FORWARDED_PROTO="1"))
    answers = seen["answers"]
    assert answers["plain_api"]["status"] == 301
    assert answers["plain_api"]["location"] == "https://testserver/api/v1/agents"
    assert answers["plain_health"]["status"] == 200  # probes call over plain HTTP inside the network
    assert answers["forwarded_https"]["headers"]["Strict-Transport-Security"].startswith("max-age=31536000")
    login = answers["secure_login"]
    assert login["status"] == 200
    assert login["headers"]["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert login["csrf_cookie_secure"] is True and seen["session_cookie_secure"] is True
    for answer in answers.values():
        assert answer["headers"]["X-Content-Type-Options"] == "nosniff"
        assert answer["headers"]["Referrer-Policy"] == "same-origin"
        if answer["status"] == 200:  # the redirect is answered before the frame options are added
            assert answer["headers"]["X-Frame-Options"] == "DENY"


def test_without_https_nothing_redirects_and_cookies_work_over_http(tmp_path):
    seen = headers(local_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1"))
    answers = seen["answers"]
    assert answers["plain_api"]["status"] == 401  # answered, not redirected
    assert "Strict-Transport-Security" not in answers["secure_login"]["headers"]
    assert answers["secure_login"]["csrf_cookie_secure"] is False and seen["session_cookie_secure"] is False
    assert answers["plain_health"]["headers"]["X-Content-Type-Options"] == "nosniff"
    assert answers["plain_health"]["headers"]["Referrer-Policy"] == "same-origin"
