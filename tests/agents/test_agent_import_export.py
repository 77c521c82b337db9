"""import_agents and export_agents through call_command: the older system's agents YAML, our export read
back, all-or-nothing imports with field errors by index, and secrets that never leave in clear."""

import io
import json

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.choices import MASK
from agents.models import Agent
from audit.models import AuditEvent
from tests.factories import AgentFactory, UserFactory

pytestmark = pytest.mark.django_db

OLDER_FILE = """\
# agents.yaml, as the older system's scripts/register_agents.py reads it
agents:
  - name: ResearchAgent
    url: http://research-agent:8081
    description: Researches topics
    auth_type: none
    timeout_ms: 30000
    retry_config:
      max_retries: 3
      initial_delay_ms: 1000
      max_delay_ms: 30000
      backoff_multiplier: 2.0
  - name: SecureAgent
    url: https://secure-agent.example.com
    auth_type: apikey
    auth_config:
      api_key: the-key
      header_name: X-Secret
    timeout_ms: 60000
  - name: AuthenticatedAgent
    url: https://auth-agent.example.com
    auth_type: BEARER
    auth_config:
      token: the-token
"""


def command(*args) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=out)
        return out.getvalue(), 0
    except CommandError as exc:
        return out.getvalue() + str(exc), exc.returncode


def write(tmp_path, text, name="agents.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_older_agents_yaml_imports(tmp_path):
    UserFactory(username="ops")
    out, code = command("import_agents", write(tmp_path, OLDER_FILE), "--user", "ops")
    assert code == 0, out
    assert out.splitlines()[-1] == "3 created, 0 updated, 0 unchanged, 0 skipped, 0 invalid"
    research = Agent.objects.get(name="ResearchAgent")
    assert research.url == "http://research-agent:8081" and research.timeout_ms == 30000
    assert research.retry_config == {
        "max_retries": 3,
        "initial_delay_ms": 1000,
        "max_delay_ms": 30000,
        "backoff_multiplier": 2.0,
    }
    secure = Agent.objects.get(name="SecureAgent")
    assert secure.auth_config == {"key": "the-key", "header_name": "X-Secret"}  # the example's api_key
    bearer = Agent.objects.get(name="AuthenticatedAgent")
    assert bearer.auth_type == "bearer" and bearer.auth_config == {"token": "the-token"}
    events = AuditEvent.objects.filter(action="agent.create")
    assert events.count() == 3 and {event.user for event in events} == {"ops"}
    assert "the-token" not in json.dumps(list(events.values_list("changes", flat=True)))


def test_existing_names_are_skipped_or_updated(tmp_path):
    AgentFactory(name="ResearchAgent", url="http://old-host:1/", timeout_ms=5000)
    path = write(tmp_path, OLDER_FILE)
    out, code = command("import_agents", path)
    assert code == 0 and "ResearchAgent: skipped: the name exists (--update to change it)" in out
    assert Agent.objects.get(name="ResearchAgent").url == "http://old-host:1/"
    assert out.splitlines()[-1] == "2 created, 0 updated, 0 unchanged, 1 skipped, 0 invalid"

    out, code = command("import_agents", path, "--update")
    research = Agent.objects.get(name="ResearchAgent")
    assert code == 0 and research.url == "http://research-agent:8081" and research.timeout_ms == 30000
    assert out.splitlines()[-1] == "0 created, 1 updated, 2 unchanged, 0 skipped, 0 invalid"
    [event] = AuditEvent.objects.filter(action="agent.update")
    assert event.user == "" and event.changes["url"] == ["http://old-host:1/", "http://research-agent:8081"]
    out, code = command("import_agents", path, "--update")
    assert out.splitlines()[-1] == "0 created, 0 updated, 3 unchanged, 0 skipped, 0 invalid"


def test_an_invalid_entry_imports_nothing_and_names_every_problem(tmp_path):
    text = OLDER_FILE + (
        "  - name: Broken\n    url: ftp://nowhere\n    timeout_ms: 5\n    retry_config: {max_retries: 99}\n"
        "  - url: http://no-name:1\n"
        "  - name: ResearchAgent\n    url: http://twice:1\n"
        "  - name: Typo\n    url: http://typo:1\n    timout_ms: 5\n"
    )
    out, code = command("import_agents", write(tmp_path, text))
    assert code == 1
    for line in [
        "agents[3] Broken: invalid",
        "agents[3].url: Must be an http or https URL.",
        "agents[3].timeout_ms: Ensure this value is greater than or equal to 1000.",
        "agents[3].retry_config.max_retries: Ensure this value is less than or equal to 10.",
        "agents[4].name: This field is required.",
        "agents[5].name: Also at index 0: each name once per file.",
        "agents[6].timout_ms: Unknown field.",
    ]:
        assert line in out, out
    assert "Nothing imported: 4 invalid entries" in out
    assert not Agent.objects.exists() and not AuditEvent.objects.exists()


def test_a_failure_while_writing_rolls_back_the_agents_written_before_it(tmp_path):
    # The file's second entry is valid on its own; the service refuses it (the name is taken by then).
    text = "agents:\n  - {name: first, url: 'http://a:1'}\n  - {name: ' first ', url: 'http://b:1'}\n"
    out, code = command("import_agents", write(tmp_path, text))
    assert code == 1 and "agents[1].name: Also at index 0" in out
    assert not Agent.objects.exists()


def test_dry_run_reports_and_writes_nothing(tmp_path):
    AgentFactory(name="ResearchAgent")
    out, code = command("import_agents", write(tmp_path, OLDER_FILE), "--dry-run", "--update")
    assert code == 0 and "SecureAgent: would be created" in out and "ResearchAgent: would be updated" in out
    assert out.splitlines()[-1] == "Dry run, nothing written: 2 created, 1 updated, 0 unchanged, 0 skipped, 0 invalid"
    assert Agent.objects.count() == 1 and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agents: [unclosed", "not valid YAML or JSON"),
        ("name: x\nurl: http://x:1\n", "expected a list of agents"),
        ("!!python/object:os.system {}", "not valid YAML or JSON"),  # safe loading: no tags
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path, text, message):
    out, code = command("import_agents", write(tmp_path, text))
    assert code == 1 and message in out


def test_a_missing_file_or_user_is_a_clear_error(tmp_path):
    out, code = command("import_agents", str(tmp_path / "none.yaml"))
    assert code == 1 and "Cannot read" in out
    out, code = command("import_agents", write(tmp_path, OLDER_FILE), "--user", "nobody")
    assert code == 1 and "No active user 'nobody'" in out


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_masks_secrets_and_imports_back(tmp_path, fmt):
    AgentFactory(name="plain", url="http://plain:1/", max_concurrency=3)
    AgentFactory(name="guarded", url="http://guarded:1/", auth_type="bearer", auth_config={"token": "s3cret"})
    path = tmp_path / f"agents.{fmt}"
    out, code = command("export_agents", "--format", fmt, "--output", str(path))
    text = path.read_text()
    assert code == 0 and "Wrote 2 agent(s)" in out and "Secrets are not exported" in out
    assert "s3cret" not in text and "Secrets are not exported" in text
    document = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert [agent["name"] for agent in document["agents"]] == ["guarded", "plain"]
    assert document["agents"][0]["auth_config"] == {"token": MASK}
    assert document["agents"][1]["max_concurrency"] == 3

    # Back into the same instance: the stored secret is kept (same URL origin, as the API does).
    out, code = command("import_agents", str(path), "--update")
    assert code == 0 and "2 unchanged" in out
    assert Agent.objects.get(name="guarded").auth_config == {"token": "s3cret"}

    # Into an empty instance: the masked secret must be replaced first, and nothing is half imported.
    Agent.objects.all().delete()
    out, code = command("import_agents", str(path))
    assert code == 1 and f"agents[0].auth_config.token: Exported secrets read {MASK}: put the real token here." in out
    assert not Agent.objects.exists()
    path.write_text(text.replace(MASK, "new-secret"))
    out, code = command("import_agents", str(path))
    assert code == 0 and Agent.objects.get(name="guarded").auth_config == {"token": "new-secret"}


def test_export_to_standard_output_defaults_to_yaml():
    AgentFactory(name="plain")
    AgentFactory(name="gone", status="deleted")
    out, code = command("export_agents")
    assert code == 0 and out.startswith("# Agents exported by manage.py export_agents;")
    assert [agent["name"] for agent in yaml.safe_load(out)["agents"]] == ["plain"]


def test_an_agent_read_from_the_api_imports_as_it_is(tmp_path, editor):
    created = editor.post(
        "/api/v1/agents",
        {"name": "from-api", "url": "http://x:1/", "auth_type": "apikey", "auth_config": {"key": "k"}},
        format="json",
    )
    body = editor.get(f"/api/v1/agents/{created.json()['id']}").json()
    Agent.objects.all().delete()
    body["auth_config"]["key"] = "k2"
    out, code = command("import_agents", write(tmp_path, json.dumps([body]), "agents.json"))
    assert code == 0, out
    assert Agent.objects.get(name="from-api").auth_config == {"key": "k2", "header_name": "X-API-Key"}


BAD_ENTRIES = [
    {"name": "", "url": "http://x:1/"},
    {"name": 5, "url": "http://x:1/"},
    {"name": "x", "url": "not a url"},
    {"name": "x", "url": "ftp://x/"},
    {"name": "x", "url": "http://x:1/", "timeout_ms": 999},
    {"name": "x", "url": "http://x:1/", "timeout_ms": "soon"},
    {"name": "x", "url": "http://x:1/", "auth_type": "basic"},
    {"name": "x", "url": "http://x:1/", "auth_type": "bearer"},
    {"name": "x", "url": "http://x:1/", "auth_type": "bearer", "auth_config": {"token": "a\nb"}},
    {"name": "x", "url": "http://x:1/", "auth_type": "none", "auth_config": {"token": "t"}},
    {"name": "x", "url": "http://x:1/", "retry_config": {"max_retries": 11}},
    {"name": "x", "url": "http://x:1/", "retry_config": {"initial_delay_ms": 5000, "max_delay_ms": 1000}},
    {"name": "x", "url": "http://x:1/", "retry_config": {"jitter": True}},
    {"name": "x", "url": "http://x:1/", "max_concurrency": 0},
    {"name": "x", "url": "http://x:1/", "status": "deleted"},
    {"name": "x", "url": "http://x:1/", "colour": "red"},
]


@pytest.mark.parametrize("entry", BAD_ENTRIES)
def test_entries_are_checked_as_the_api_checks_them(tmp_path, editor, entry):
    api = editor.post("/api/v1/agents", entry, format="json")
    assert api.status_code == 422
    expected = sorted(f"agents[0].{error['field']}" for error in api.json()["errors"])
    out, code = command("import_agents", write(tmp_path, json.dumps({"agents": [entry]}), "agents.json"))
    found = sorted(line.strip().split(": ")[0] for line in out.splitlines() if line.startswith("    agents[0]"))
    assert code == 1 and found == expected, out


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://research-agent:8081", 201),  # a single-label host (a Compose service), as the older API took
        ("http://localhost:9100/echo", 201),
        ("http://10.0.0.5:1/", 201),
        ("http://under_score:1/", 422),
        ("http://-dash:1/", 422),
        ("http://:1/", 422),
    ],
)
def test_agent_urls_may_name_a_host_on_the_local_network(editor, url, status):
    response = editor.post("/api/v1/agents", {"name": "a", "url": url}, format="json")
    assert response.status_code == status, response.json()


def test_without_an_encryption_key_secrets_are_a_clear_error_and_nothing_is_imported(tmp_path, settings):
    settings.FIELD_ENCRYPTION_KEY = []
    out, code = command("import_agents", write(tmp_path, OLDER_FILE))
    assert code == 1 and "Nothing imported: FIELD_ENCRYPTION_KEY is not set" in out
    assert not Agent.objects.exists()
