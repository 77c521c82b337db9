"""How the processes start (bin/process) and the container stack (docker-compose.yml, Dockerfile) agree with
themselves and with the settings. No Docker needed: the files are parsed, and the launcher runs with a stand-in
`python` that prints what it was asked to run."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "bin" / "process"
DOCKERFILE = ROOT / "Dockerfile"
PROCFILE = ROOT / "Procfile"

INFRA_SERVICES = {"postgres", "redis", "kafka"}
APP_SERVICES = {"web", "worker", "beat", "executor", "bridge", "demo-agent"}
PROCESSES = APP_SERVICES | {"broker"}  # the broker is the embedded one of ./dev up; compose runs Apache Kafka


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def launcher_branches() -> dict[str, str]:
    """Branch name -> body of each `name)` branch of the launcher's case statement."""
    text = LAUNCHER.read_text()
    case = text[text.index('case "$1" in') : text.index("esac")]
    parts = re.split(r"^\s*([\w*-]+)\)\s*$", case, flags=re.MULTILINE)
    return {name: body for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def procfile() -> dict[str, str]:
    lines = [line for line in PROCFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split(":", 1) for line in lines)


def env_names_read_by_settings() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    helpers = re.findall(r'\benv_\w+\(\s*"([A-Z0-9_]+)"', source)
    environ = re.findall(r'os\.(?:environ(?:\.get)?|getenv)[\[(]\s*"([A-Z0-9_]+)"', source)
    return set(helpers) | set(environ)


def launch(tmp_path, *args: str, **env: str) -> list[str]:
    """What the launcher would run: a stand-in `python` first on PATH prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" python "$@"\n')
    fake.chmod(0o755)
    names = ("HOST", "PORT", "WEB_WORKERS", "WORKER_CONCURRENCY", "LOG_LEVEL", "DEMO_AGENT_PORT", "DEMO_AGENT_URL")
    base = {k: v for k, v in os.environ.items() if k not in names}
    done = subprocess.run(
        [str(LAUNCHER), *args],
        env={**base, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


# -- one launcher -----------------------------------------------------------------------------------


def test_the_launcher_knows_every_process():
    branches = launcher_branches()
    assert set(branches) == PROCESSES | {"*"}, "anything else must be run as given"
    assert 'exec "$@"' in branches["*"]


def test_procfile_lines_only_name_the_launcher():
    lines = procfile()
    assert set(lines) == PROCESSES
    assert next(iter(lines)) == "web", "honcho hands PORT to the first process only"
    for name, command in lines.items():
        assert command.strip() == f"bin/process {name}", f"Procfile {name}: start it through the launcher"


def test_compose_commands_only_name_the_process(services):
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert command == name, f"{name}: `command: {name}` (bin/process knows how it starts)"
        assert "entrypoint" not in services[name], f"{name}: the image's entry point is the launcher"


def test_the_image_starts_through_the_launcher():
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["bin/process"]' in text
    assert 'CMD ["web"]' in text
    # Containers listen on every interface; ./dev up keeps the launcher's default, 127.0.0.1.
    assert re.search(r"^ENV\b[^\n]*(?:\\\n[^\n]*)*\bHOST=0\.0\.0\.0", text, flags=re.MULTILINE)
    assert not (ROOT / "docker" / "entrypoint.sh").exists(), "one launcher only"


def test_no_other_file_spells_out_how_a_process_starts(services):
    others = [PROCFILE.read_text(), DOCKERFILE.read_text(), (ROOT / "docker-compose.yml").read_text()]
    for text in others:
        for fragment in (
            "gunicorn",
            "uvicorn",
            "celery -A",
            "run_executor",
            "run_bridge",
            "run_demo_agent",
            "run_broker",
        ):
            assert fragment not in text, f"{fragment!r} belongs in bin/process only"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["web"],
            {},
            "python -m uvicorn config.asgi:application --host 127.0.0.1 --port 8000 --workers 2 --log-level info "
            "--no-proxy-headers --timeout-graceful-shutdown 5",
        ),
        ([], {}, "python -m uvicorn config.asgi:application --host 127.0.0.1 --port 8000"),  # no argument: web
        (
            ["web", "--limit-concurrency", "2000"],
            {"HOST": "0.0.0.0", "PORT": "8123", "WEB_WORKERS": "5", "LOG_LEVEL": "WARNING"},
            "python -m uvicorn config.asgi:application --host 0.0.0.0 --port 8123 --workers 5 --log-level warning "
            "--no-proxy-headers --timeout-graceful-shutdown 5 --limit-concurrency 2000",
        ),
        (["worker"], {}, "python -m celery -A config worker --loglevel INFO --concurrency 2"),
        (["worker"], {"WORKER_CONCURRENCY": "8", "LOG_LEVEL": "DEBUG"}, "--loglevel DEBUG --concurrency 8"),
        # beat's schedule file comes from the settings (under DATA_DIR), the same in development and the image
        (["beat"], {}, "python -m celery -A config beat --loglevel INFO"),
        (["executor"], {}, "python manage.py run_executor"),
        (["bridge", "--once"], {}, "python manage.py run_bridge --once"),
        (["broker"], {}, "python manage.py run_broker"),
        (["demo-agent"], {}, "python manage.py run_demo_agent --host 127.0.0.1 --port 9100"),
        (
            ["demo-agent"],
            {"HOST": "0.0.0.0", "DEMO_AGENT_PORT": "9000", "DEMO_AGENT_URL": "http://demo-agent:9000"},
            "python manage.py run_demo_agent --host 0.0.0.0 --port 9000 --base-url http://demo-agent:9000",
        ),
        (["python", "manage.py", "createsuperuser"], {}, "python manage.py createsuperuser"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_the_launcher_runs_each_process_with_flags_from_the_environment(tmp_path, args, env, expected):
    ran = " ".join(launch(tmp_path, *args, **env))
    assert ran.startswith(expected) if expected.startswith("python") else expected in ran, ran


def test_web_alone_migrates_at_start():
    # config/asgi.py (the web process; config/wsgi.py too, for WSGI servers) applies migrations; the
    # launcher runs none itself, and every other
    # process waits for the schema (core.schema.schema_wait).
    assert "migrate" not in LAUNCHER.read_text().split('case "$1" in')[1]
    assert 'outside_the_loop(migrate_on_start, "web")' in (ROOT / "config" / "asgi.py").read_text()
    assert 'migrate_on_start("web")' in (ROOT / "config" / "wsgi.py").read_text()
    for path in (
        "runs/management/commands/run_executor.py",
        "runs/management/commands/run_bridge.py",
        "config/celery.py",
    ):
        source = (ROOT / path).read_text()
        assert "schema_wait(" in source and "migrate_on_start" not in source, path


def test_launcher_is_valid_executable_shell():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    result = subprocess.run([bash, "-n", str(LAUNCHER)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert LAUNCHER.read_text().splitlines()[0] == "#!/bin/sh"
    assert re.search(r"^set -e\b", LAUNCHER.read_text(), flags=re.MULTILINE)
    assert os.access(LAUNCHER, os.X_OK)


# -- the container stack ----------------------------------------------------------------------------


def test_every_service_is_defined(services):
    assert set(services) == INFRA_SERVICES | APP_SERVICES


def test_app_services_run_the_same_image(services):
    builds = {repr(services[name].get("build")) for name in APP_SERVICES}
    images = {services[name].get("image") for name in APP_SERVICES}
    assert builds == {repr(".")}
    assert len(images) == 1 and None not in images
    assert DOCKERFILE.is_file()
    assert (ROOT / ".dockerignore").is_file()


def test_app_environment_names_are_read_by_the_settings(services):
    known = env_names_read_by_settings()
    # Read by the launcher rather than by Django.
    known |= set(re.findall(r"\$\{([A-Z0-9_]+)", LAUNCHER.read_text()))
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert isinstance(environment, dict), f"{name}: environment must be a mapping"
        unknown = set(environment) - known
        assert not unknown, f"{name}: {sorted(unknown)} are read neither by config/settings.py nor bin/process"


def test_app_environment_points_at_the_stack(services):
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgres://wf:wf@postgres:5432/wf"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "the stack must refuse to start without a secret"
        assert env["DEMO_AGENT_URL"] == "http://demo-agent:9000"
    # The demo agent listens where the others are told it is.
    assert services["demo-agent"]["environment"]["DEMO_AGENT_PORT"] == "9000"


def test_start_order_and_health_checks(services):
    for name in INFRA_SERVICES | {"web"}:
        assert services[name]["healthcheck"]["test"], f"{name} needs a health check"
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        for dependency in INFRA_SERVICES:
            assert depends_on[dependency] == {"condition": "service_healthy"}, name
        if name != "web":
            # web applies the migrations before it answers its health check.
            assert depends_on["web"] == {"condition": "service_healthy"}, name
    for name in INFRA_SERVICES | APP_SERVICES:
        assert services[name]["restart"] == "unless-stopped", name
    assert "8000:8000" in services["web"]["ports"]
    assert "9000:9000" in services["demo-agent"]["ports"]


def test_kafka_is_a_single_node_kraft_broker(services):
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_dockerfile_runs_as_a_non_root_user():
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    # The dummy secret exists for collectstatic only, never in the image's environment.
    assert re.search(r"SECRET_KEY=build-only python manage.py collectstatic --noinput", text)
    assert not re.search(r"^ENV[^\n]*SECRET_KEY", text, flags=re.MULTILINE)
    # .data, the one writable folder, with whatever collectstatic's Django setup made in it.
    assert "chown -R app:app /app/.data" in text


def test_two_executors_and_two_bridges_by_default(services):
    # Scale-out through the consumer groups (tests/faults/test_scale_out.py); web, worker and beat stay one each.
    for name in ("executor", "bridge"):
        assert services[name]["deploy"]["replicas"] == 2, name
        assert "container_name" not in services[name] and "ports" not in services[name], f"{name}: replicas clash"
    for name in APP_SERVICES - {"executor", "bridge"}:
        assert services[name].get("deploy", {}).get("replicas", 1) == 1, name


def test_topics_get_the_platform_partition_count_however_they_are_created(services):
    # Created by our processes (KAFKA_TOPIC_PARTITIONS) or by the broker on a first write: the same count.
    partitions = "${KAFKA_TOPIC_PARTITIONS:-4}"
    assert services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"] == partitions
    for name in APP_SERVICES:
        assert services[name]["environment"]["KAFKA_TOPIC_PARTITIONS"] == partitions, name
    assert 'env_int("KAFKA_TOPIC_PARTITIONS", 4,' in (ROOT / "config" / "settings.py").read_text()
