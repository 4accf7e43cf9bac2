"""/dashboard: the page and its assets as served, then the page itself in headless Chromium
following a publish live through ``orgEvents``."""

import pytest

from tests.browser import WAIT_MS, chromium, needs_chromium, page_problems, page_urls
from tests.demo_server import demo_key, post_and_publish, sandbox_account
from tests.servers import FAST_RETRIES, serve


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(api):
    page = await api.http.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "default-src 'none'" in policy
    assert 'src="dashboard/dashboard.js"' in page.text
    script = await api.http.get("/dashboard/dashboard.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "graphql-transport-ws" in script.text and "innerHTML" not in script.text
    assert (await api.http.get("/dashboard/dashboard.css")).headers["content-type"].startswith("text/css")
    slash = await api.http.get("/dashboard/", follow_redirects=False)
    assert (slash.status_code, slash.headers["location"]) == (308, "http://testserver/dashboard")
    for missing in ("/dashboard/dashboard.py", "/dashboard/../app.py", "/dashboardx", "/dashboard/static/dashboard.js"):
        assert (await api.http.get(missing)).status_code == 404, missing


@pytest.mark.e2e
@needs_chromium
def test_the_dashboard_shows_a_job_reach_succeeded_live(tmp_path):
    with serve(tmp_path, "--demo", env=FAST_RETRIES) as server:
        key = demo_key(server.stdout())
        # One transient failure first, so the target goes publishing → retry_pending → published.
        account = sandbox_account(server, key, "dashboard", failure_mode="transient", failure_count="1")
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 640})
            problems = page_problems(page)
            urls = page_urls(page)

            page.goto(server.base_url + "/dashboard")
            page.fill("#api-key", key)
            page.click("#connect")
            # Live means: acked, subscribed, and the server answered a ping sent after subscribing.
            page.wait_for_selector("#connection.badge-live", timeout=WAIT_MS)

            text = "<b>Bold?</b> Hello from the dashboard test"
            _post_id, job_id = post_and_publish(server, key, [account], text)
            row = f'tr[data-job-id="{job_id}"]'
            page.wait_for_selector(f'{row}[data-status="succeeded"]', timeout=WAIT_MS)
            page.wait_for_function(
                "(row) => document.querySelector(row + ' .progress-text')?.textContent.trim() === '1/1'",
                arg=row, timeout=WAIT_MS,
            )
            assert page.text_content(f"{row} .job-status") == "succeeded"
            assert page.text_content(f"{row} .target-status") == "published"
            assert page.get_attribute(f"{row} a.platform-url", "href").startswith("https://sandbox.socialgate.invalid/@dashboard/")
            # Text from the API is text: the markup in the post shows as written, no <b> element.
            assert page.text_content(f"{row} .post-text") == text
            assert page.query_selector(f"{row} b") is None
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            # The key lives in sessionStorage only: a reload reconnects by itself, and the job,
            # now from the first snapshot, is still there.
            assert page.evaluate("sessionStorage.getItem('socialgate.dashboard.key')") == key
            page.reload()
            page.wait_for_selector("#connection.badge-live", timeout=WAIT_MS)
            page.wait_for_selector(f'{row}[data-status="succeeded"]', timeout=WAIT_MS)
            assert not any(key in url for url in urls), urls
            assert problems == []
