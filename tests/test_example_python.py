"""examples/python/publish_and_watch.py, run as its README says against a demo server: it
connects a sandbox account or uses the one given, publishes, prints every event of the job in
order through job.succeeded, resumes a job's events after a seq, and reports a refusal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo_server import demo_key, graphql, stored_job
from tests.servers import RunningServer, serve

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "python" / "publish_and_watch.py"
EVENT_LINE = re.compile(r"^(\d+) (\S+) (\{.*\})$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[RunningServer, str]:
    with serve(tmp_path_factory.mktemp("python-example"), "--demo") as server:
        yield server, demo_key(server.stdout())


def run(demo: tuple[RunningServer, str], *args: str) -> subprocess.CompletedProcess[str]:
    server, key = demo
    return subprocess.run(
        [sys.executable, str(SCRIPT), server.base_url + "/graphql", key, *args],
        capture_output=True, text=True, timeout=120,
    )


def events(output: str) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for line in output.splitlines() if (m := EVENT_LINE.match(line))]


def job_of(output: str) -> str:
    return re.search(r"^publishing as job (job_\w+)$", output, re.M).group(1)


def test_it_publishes_and_prints_the_jobs_events_through_succeeded(demo):
    done = run(demo, "--text", "From the Python example")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^connected sandbox account acct_\w+$", done.stdout, re.M), done.stdout
    job_id = job_of(done.stdout)
    printed = events(done.stdout)
    # Every stored event, once and in order, then the verdict as the last line.
    assert printed == [(e["seq"], e["kind"]) for e in stored_job(*demo, job_id)["events"]]
    kinds = [kind for _seq, kind in printed]
    assert kinds[0] == "job.queued" and kinds[-1] == "job.succeeded" and "target.published" in kinds
    assert done.stdout.splitlines()[-1] == f"job {job_id} ended: SUCCEEDED"

    resumed = run(demo, "--job", job_id, "--after-seq", "3")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert events(resumed.stdout) == printed[3:]


def test_it_publishes_to_the_account_given(demo):
    account_id = graphql(*demo, '{ accounts(filter: {provider: "sandbox"}, first: 1) { nodes { id } } }')["accounts"]["nodes"][0]["id"]
    done = run(demo, "--account", account_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "connected sandbox account" not in done.stdout
    post = graphql(*demo, "query($id: ID!) { job(id: $id) { post { targets { account { id } } } } }", {"id": job_of(done.stdout)})
    assert post["job"]["post"]["targets"] == [{"account": {"id": account_id}}]


def test_it_reports_a_refused_post(demo):
    refused = run(demo, "--account", "acct_missing")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("refused: "), refused.stderr
    assert "publishing as job" not in refused.stdout
