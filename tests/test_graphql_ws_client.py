"""A third-party client, npm `graphql-ws` under Node, follows a publish through `jobEvents`.

The client (tests/peers/graphql_ws_client, pinned by its lockfile; `.ci/run` runs `npm ci`
there) prints each event it receives as a JSON line and exits when the server completes the
subscription. Whatever it received must be exactly the job's stored events, in order: from the
start, and when resuming with ``afterSeq`` in the middle.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.demo_server import demo_key, post_and_publish, sandbox_account, stored_job
from tests.servers import RunningServer, serve

NODE = shutil.which("node")
CLIENT = Path(__file__).resolve().parent / "peers" / "graphql_ws_client"
CLIENT_TIMEOUT = 90  # seconds; the script gives up by itself after 60

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NODE is None and not os.environ.get("CI"), reason="needs node (CI has it)"),
]


def _start_client(server: RunningServer, key: str, job_id: str, after_seq: int) -> subprocess.Popen:
    if not (CLIENT / "node_modules" / "graphql-ws").is_dir():
        # CI installs them in .ci/run; a developer's first run installs them from the lockfile.
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("the client's packages are missing and npm is not installed")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, check=True, timeout=600)
    url = server.base_url.replace("http://", "ws://", 1) + "/graphql"
    return subprocess.Popen(
        [NODE, str(CLIENT / "job_events.mjs"), url, key, job_id, str(after_seq)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _received(client: subprocess.Popen) -> list[tuple[int, str]]:
    try:
        stdout, stderr = client.communicate(timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        client.kill()
        stdout, stderr = client.communicate()
    assert client.returncode == 0, f"exit {client.returncode}: {stderr}\n{stdout}"
    events = [json.loads(line) for line in stdout.splitlines()]
    return [(event["seq"], event["kind"]) for event in events]


def test_graphql_ws_receives_every_event_of_a_publish_in_order(tmp_path):
    with serve(tmp_path, "--demo") as server:
        key = demo_key(server.stdout())
        # One transient failure, then success: the job has a retry's worth of events, and the
        # backoff keeps it running while the clients below are already subscribed.
        account = sandbox_account(server, key, "graphql-ws", failure_mode="transient", failure_count="1")
        _post_id, job_id = post_and_publish(server, key, [account], "Followed by a Node client")

        from_start = _start_client(server, key, job_id, 0)
        resumed = _start_client(server, key, job_id, 3)
        got_from_start, got_resumed = _received(from_start), _received(resumed)

        job = stored_job(server, key, job_id)
        stored = [(event["seq"], event["kind"]) for event in job["events"]]
        assert job["status"] == "SUCCEEDED"
        assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
        kinds = [kind for _, kind in stored]
        assert kinds[0] == "job.queued" and kinds[-1] == "job.succeeded"
        assert kinds.count("target.publishing") == 2 and "target.retry_pending" in kinds

        assert got_from_start == stored
        assert got_resumed == stored[3:]
        # Resuming from the middle of a finished job replays exactly the rest, then completes.
        middle = len(stored) // 2
        assert _received(_start_client(server, key, job_id, middle)) == stored[middle:]
