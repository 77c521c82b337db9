"""The README's run command: `./dev up` starts the whole system and the sample workflow runs to completion."""

import json
import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from tests.support.server import ROOT, free_port
from tests.support.system import wait_for

pytestmark = pytest.mark.slow


def test_dev_up_runs_the_whole_system_and_the_sample_workflow(tmp_path):
    port, kafka_port, agent_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DATA_DIR=str(tmp_path),
        PORT=str(port),
        KAFKA_PORT=str(kafka_port),
        DEMO_AGENT_PORT=str(agent_port),
        KAFKA_MAX_POLL_INTERVAL_MS="3000",
        KAFKA_SESSION_TIMEOUT_MS="3000",
        WEB_WORKERS="1",
    )
    log = (tmp_path / "dev-up.log").open("w+b")
    process = subprocess.Popen(
        ["./dev", "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"

    def output() -> str:
        return (tmp_path / "dev-up.log").read_text(errors="replace")

    try:
        key = wait_for(lambda: re.search(r"Admin API key.*: (\S+)", output()), timeout=120, what="the key").group(1)
        assert (tmp_path / "quickstart-api-key").read_text().strip() == key
        command = re.search(r"curl -s -X POST .*?/execute", output(), re.S)
        assert command, output()
        workflow_id = re.search(r"/workflows/([0-9a-f-]{36})/execute", command.group(0)).group(1)
        headers = {"X-API-Key": key}

        def up():
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, what="the web server")
        body = {"input_data": {"text": "hello multi-agent world"}}
        run = httpx.post(f"{url}/api/v1/workflows/{workflow_id}/execute", json=body, headers=headers, timeout=10)
        assert run.status_code == 202, run.text

        def finished():
            current = httpx.get(f"{url}/api/v1/runs/{run.json()['id']}", headers=headers, timeout=10).json()
            return current if current["status"] in ("COMPLETED", "FAILED") else None

        done = wait_for(finished, timeout=60, interval=0.3, what="the sample run")
        assert done["status"] == "COMPLETED", (done, output())
        assert done["output_data"]["count"] == 3 and done["output_data"]["words"][0] == "HELLO"

        # The README's own command, pointed at this instance.
        readme = (ROOT / "README.md").read_text()
        snippet = re.search(r"```bash\n(KEY=\$\(cat .*?)```", readme, re.S).group(1)
        snippet = snippet.replace("http://127.0.0.1:8000", url).replace(".data/", f"{tmp_path}/")
        shown = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, timeout=60)
        assert '"status":"COMPLETED"' in shown.stdout, (shown.stdout, shown.stderr)
        assert '"words":["HELLO","MULTI-AGENT","WORLD"]' in shown.stdout

        # The examples are registered and listed with their sample inputs; the mixed one runs.
        examples = {
            m[0]: (m[1], m[2]) for m in re.findall(r"^ +(example-\S+) +([0-9a-f-]{36})  input: (.+)$", output(), re.M)
        }
        assert set(examples) >= {"example-parallel", "example-conditional", "example-loop", "example-fork-join"}
        workflow_id, sample = examples["example-mixed"]
        run = httpx.post(
            f"{url}/api/v1/workflows/{workflow_id}/execute", json={"input_data": json.loads(sample)}, headers=headers
        )
        assert run.status_code == 202, run.text
        done = wait_for(finished, timeout=60, interval=0.3, what="the mixed example")
        assert done["status"] == "COMPLETED", (done, output())
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{output()[-6000:]}") from None
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.2)
