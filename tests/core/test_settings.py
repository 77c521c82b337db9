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


def test_web_server_refuses_to_start_without_a_secret_key():
    result = run("import config.wsgi")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert run("import config.wsgi", SECRET_KEY="s3cret").returncode == 0
    assert run("import config.wsgi", DEBUG="1").returncode == 0


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
