"""The container stack (docker-compose.yml, Dockerfile, docker/entrypoint.sh) agrees with itself and with the
settings. No Docker needed: the files are parsed and the script is only syntax-checked."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
DOCKERFILE = ROOT / "Dockerfile"

INFRA_SERVICES = {"postgres", "redis", "kafka"}
APP_SERVICES = {"web", "worker", "beat", "executor", "bridge", "demo-agent"}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def entrypoint_branches() -> dict[str, str]:
    """Branch name -> body of each `name)` branch of the entry point's case statement."""
    text = ENTRYPOINT.read_text()
    case = text[text.index('case "$1" in') : text.index("esac")]
    parts = re.split(r"^\s*([\w*-]+)\)\s*$", case, flags=re.MULTILINE)
    return {name: body for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def env_names_read_by_settings() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    helpers = re.findall(r'\benv_\w+\(\s*"([A-Z0-9_]+)"', source)
    environ = re.findall(r'os\.(?:environ(?:\.get)?|getenv)[\[(]\s*"([A-Z0-9_]+)"', source)
    return set(helpers) | set(environ)


def test_every_service_is_defined(services):
    assert set(services) == INFRA_SERVICES | APP_SERVICES


def test_app_services_run_the_same_image(services):
    builds = {repr(services[name].get("build")) for name in APP_SERVICES}
    images = {services[name].get("image") for name in APP_SERVICES}
    assert builds == {repr(".")}
    assert len(images) == 1 and None not in images
    assert DOCKERFILE.is_file()
    assert (ROOT / ".dockerignore").is_file()


def test_every_app_command_is_a_branch_of_the_entrypoint(services):
    branches = entrypoint_branches()
    assert "*" in branches, "anything else must be run as given"
    for name in APP_SERVICES:
        command = services[name]["command"]
        first = command.split()[0] if isinstance(command, str) else command[0]
        assert first in branches, f"{name}: {first!r} is not handled by docker/entrypoint.sh"
    # Each branch starts what its name says.
    expected = {
        "web": ["manage.py migrate --noinput", "exec gunicorn config.wsgi", "--bind 0.0.0.0:8000", "${WEB_WORKERS:-2}"],
        "worker": ["exec celery -A config worker"],
        "beat": ["exec celery -A config beat", "--schedule /tmp/celerybeat-schedule"],
        "executor": ["exec python manage.py run_executor"],
        "bridge": ["exec python manage.py run_bridge"],
        "demo-agent": [
            '--base-url "$DEMO_AGENT_URL"',
            "exec python manage.py run_demo_agent --host 0.0.0.0 --port 9000",
        ],
        "*": ['exec "$@"'],
    }
    for branch, fragments in expected.items():
        for fragment in fragments:
            assert fragment in branches[branch], f"{branch}: missing {fragment!r}"


def test_app_environment_names_are_read_by_the_settings(services):
    known = env_names_read_by_settings()
    # Read by docker/entrypoint.sh rather than by Django.
    known |= set(re.findall(r"\$\{([A-Z0-9_]+)", ENTRYPOINT.read_text()))
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert isinstance(environment, dict), f"{name}: environment must be a mapping"
        unknown = set(environment) - known
        assert not unknown, f"{name}: {sorted(unknown)} are read neither by config/settings.py nor the entry point"


def test_app_environment_points_at_the_stack(services):
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgres://wf:wf@postgres:5432/wf"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "the stack must refuse to start without a secret"
        assert env["DEMO_AGENT_URL"] == "http://demo-agent:9000"


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


def test_dockerfile_runs_the_entrypoint_as_a_non_root_user():
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["docker/entrypoint.sh"]' in text
    assert 'CMD ["web"]' in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    # The dummy secret exists for collectstatic only, never in the image's environment.
    assert re.search(r"SECRET_KEY=build-only python manage.py collectstatic --noinput", text)
    assert not re.search(r"^ENV[^\n]*SECRET_KEY", text, flags=re.MULTILINE)


def test_entrypoint_is_valid_shell():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    result = subprocess.run([bash, "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ENTRYPOINT.read_text().splitlines()[0].startswith("#!")
    assert re.search(r"^set -e\b", ENTRYPOINT.read_text(), flags=re.MULTILINE)


def test_entrypoint_is_executable():
    assert os.access(ENTRYPOINT, os.X_OK)
