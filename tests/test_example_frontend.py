"""examples/frontend: built as its README says, served as static files from another origin than
the API's, and driven in headless Chromium through a whole publish and a schedule, as its user would."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser import WAIT_MS, chromium, needs_chromium, page_problems, page_urls
from tests.demo_server import KEY_PATTERN, demo_key, graphql, stored_job
from tests.servers import RunningServer, serve

FRONTEND = Path(__file__).resolve().parent.parent / "examples" / "frontend"
HANDLE = "frontend"
TEXT = "Hello from the example app 👋"
# The browser's zone: a scheduled local time must reach the API with it.
BROWSER_ZONE = "Europe/Paris"

needs_node_modules = pytest.mark.skipif(
    not (FRONTEND / "node_modules").exists() and not os.environ.get("CI"),
    reason="run `npm ci --prefix examples/frontend` first (.ci/run does)",
)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not news in a test's output."""


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free loopback port; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def build() -> Path:
    """`npm run build`: codegen from schema.graphql and the documents, tsc, vite build."""
    done = subprocess.run(["npm", "run", "build"], cwd=FRONTEND, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return FRONTEND / "dist"


def sandbox_account_id(server: RunningServer, key: str) -> str:
    nodes = graphql(server, key, "{ accounts(first: 50) { nodes { id handle } } }")["accounts"]["nodes"]
    return next(node["id"] for node in nodes if node["handle"] == HANDLE)


def expected_counter(server: RunningServer, key: str, account_id: str) -> str:
    """The counter as the page should print it, from the API's own validatePost."""
    verdict = graphql(
        server, key,
        "query($i: PostContentInput!) { validatePost(input: $i) { targets { textLength textLimit textUnit } } }",
        {"i": {"text": TEXT, "targets": [{"accountId": account_id}]}},
    )["validatePost"]["targets"][0]
    return f"{verdict['textLength']} / {verdict['textLimit']} {verdict['textUnit']}"


@pytest.mark.e2e
@needs_chromium
@needs_node_modules
def test_the_example_app_publishes_a_post_live_to_succeeded_and_schedules_one(tmp_path):
    dist = build()
    # No key of any kind is built in: the user types it in at run time.
    built = [p for p in dist.rglob("*") if p.suffix in (".js", ".html")]
    assert any(p.suffix == ".js" for p in built) and any(p.suffix == ".html" for p in built), built
    assert not KEY_PATTERN.search("".join(p.read_text() for p in built))
    with static_site(dist) as origin:
        # The app calls the API from another origin: only CORS lets it. One transient failure,
        # retried after a short backoff, makes the job show a retry on its way.
        env = {"SOCIALGATE_CORS_ORIGINS": origin, "SOCIALGATE_RETRY_BASE_SECONDS": "0.2"}
        with serve(tmp_path, "--demo", env=env) as server, chromium() as browser:
            key = demo_key(server.stdout())
            page = browser.new_page(viewport={"width": 1000, "height": 1400}, timezone_id=BROWSER_ZONE)
            problems, urls = page_problems(page), page_urls(page)
            frames: list[str] = []
            page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: frames.append(str(frame))))

            page.goto(f"{origin}/?endpoint={server.base_url}/graphql")
            page.get_by_label("API key").fill(key)
            page.get_by_role("button", name="Use this key").click()
            expect(page.locator("#viewer")).to_contain_text("Signed in to", timeout=WAIT_MS)

            page.get_by_label("Handle").fill(HANDLE)
            page.get_by_label("Failure mode").select_option("transient")
            page.get_by_label("Failures before success").fill("1")
            page.get_by_role("button", name="Connect Sandbox").click()
            expect(page.get_by_label(f"sandbox @{HANDLE}")).to_be_checked(timeout=WAIT_MS)

            page.get_by_label("Post text").fill(TEXT)
            counter = expected_counter(server, key, sandbox_account_id(server, key))
            expect(page.locator("li.counter output")).to_have_text(counter, timeout=WAIT_MS)
            page.get_by_role("button", name="Publish now").click(timeout=WAIT_MS)

            job = page.locator('.job[data-status="SUCCEEDED"]')
            expect(job).to_be_visible(timeout=WAIT_MS)
            job_id = job.get_attribute("data-job-id")
            shown = job.locator(".events li").evaluate_all(
                "items => items.map(item => [Number(item.querySelector('code').textContent), item.dataset.kind])"
            )
            stored = stored_job(server, key, job_id)
            assert stored["status"] == "SUCCEEDED"
            # Every event, once each and in order, as the server stored them; the last one arrived
            # over the subscription's WebSocket.
            assert shown == [[event["seq"], event["kind"]] for event in stored["events"]]
            kinds = [kind for _seq, kind in shown]
            assert kinds.index("target.retry_pending") < kinds.index("target.published") < kinds.index("job.succeeded") == len(kinds) - 1
            assert any('"job.succeeded"' in frame for frame in frames)

            # Scheduling: a local time in the browser's zone becomes that instant on the server.
            at = (datetime.now(ZoneInfo(BROWSER_ZONE)) + timedelta(days=1)).replace(second=0, microsecond=0)
            page.get_by_label("Post text").fill("Later, from the example app")
            page.get_by_label("Publish at").fill(at.strftime("%Y-%m-%dT%H:%M"))
            page.get_by_role("button", name="Schedule").click(timeout=WAIT_MS)
            later = page.locator('.job[data-status="QUEUED"]')
            expect(later.locator('li[data-kind="job.queued"]')).to_be_visible(timeout=WAIT_MS)
            scheduled = graphql(
                server, key, "query($id: ID!) { job(id: $id) { post { status targets { publishAt } } } }",
                {"id": later.get_attribute("data-job-id")},
            )["job"]["post"]
            assert scheduled["status"] == "SCHEDULED"
            assert [datetime.fromisoformat(t["publishAt"]) for t in scheduled["targets"]] == [at]
            page.screenshot(path=str(tmp_path / "frontend.png"), full_page=True)

            # The key lives in this tab's sessionStorage, never in a URL: a reload keeps it.
            assert page.evaluate("sessionStorage.getItem('socialgate.example.key')") == key
            page.reload()
            expect(page.locator("#viewer")).to_contain_text("Signed in to", timeout=WAIT_MS)
            assert not any(key in url for url in urls), urls
            assert problems == []
