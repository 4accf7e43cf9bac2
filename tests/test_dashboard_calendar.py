"""The dashboard's calendar view (issue 14.6) in headless Chromium: a month and a week of local
days in the browser's timezone, with a scheduled target and an account's queue slots."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser import WAIT_MS, chromium, needs_chromium, page_problems
from tests.demo_server import demo_key, graphql, sandbox_account
from tests.servers import serve

PARIS = ZoneInfo("Europe/Paris")
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


async def test_the_calendar_script_is_served_and_writes_no_html(api):
    script = await api.http.get("/dashboard/calendar.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "calendar(from: $from, to: $to, timezone: $tz)" in script.text and "innerHTML" not in script.text
    assert 'src="dashboard/calendar.js"' in (await api.http.get("/dashboard")).text


@pytest.mark.e2e
@needs_chromium
def test_month_and_week_views_show_a_scheduled_target_and_queue_slots(tmp_path):
    with serve(tmp_path, "--demo") as server:
        key = demo_key(server.stdout())
        account = sandbox_account(server, key, "calendar")
        queued = graphql(server, key, """mutation($i: SetPostingQueueInput!) { setPostingQueue(input: $i) { userErrors { code } } }""",
                         {"i": {"accountId": account, "timezone": "Europe/Paris", "slots": [{"dayOfWeek": d, "time": "10:00"} for d in DAYS]}})
        assert queued["setPostingQueue"]["userErrors"] == []
        text = "<b>Calendar</b> post"
        post = graphql(server, key, "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } } }",
                       {"i": {"text": text, "targets": [{"accountId": account}]}})["createPost"]["post"]["id"]
        tomorrow = datetime.now(PARIS).date() + timedelta(days=1)
        at = datetime.combine(tomorrow, time(15), tzinfo=PARIS)
        scheduled = graphql(server, key, "mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { userErrors { code } } }",
                            {"id": post, "at": at.isoformat()})
        assert scheduled["schedulePost"]["userErrors"] == []

        with chromium() as browser:
            context = browser.new_context(timezone_id="Europe/Paris", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            problems = page_problems(page)
            page.goto(server.base_url + "/dashboard")
            page.fill("#api-key", key)
            page.click("#connect")
            page.wait_for_selector("#calendar-grid .day", timeout=WAIT_MS)
            assert page.text_content("#calendar-zone") == "Europe/Paris"
            cell = f'#calendar-grid .day[data-date="{tomorrow.isoformat()}"]'
            target = f'{cell} .cal-target[data-post-id="{post}"]'

            def shown_after_paging() -> None:
                """Wait for the target; page forward once if tomorrow lies past the view shown."""
                page.wait_for_function("() => document.querySelectorAll('#calendar-grid .day').length > 0", timeout=WAIT_MS)
                if page.query_selector(cell) is None:
                    page.click("#calendar-next")
                page.wait_for_selector(target, timeout=WAIT_MS)

            shown_after_paging()
            assert page.evaluate("document.querySelectorAll('#calendar-grid .day').length") % 7 == 0
            assert page.text_content(f"{target} .cal-time") == "15:00"
            assert page.text_content(f"{target} .cal-text") == text and page.query_selector(f"{target} b") is None
            page.wait_for_selector(f'{cell} .cal-slot.free[data-account-id="{account}"]', timeout=WAIT_MS)
            assert page.text_content(f'{cell} .cal-slot[data-account-id="{account}"]') == "10:00 slot · 1 free"
            page.screenshot(path=str(tmp_path / "calendar-month.png"), full_page=True)

            page.click("#calendar-today")
            page.click("#calendar-week")
            page.wait_for_function("() => document.getElementById('calendar-grid').dataset.view === 'week'", timeout=WAIT_MS)
            shown_after_paging()
            assert page.evaluate("document.querySelectorAll('#calendar-grid .day').length") == 7
            assert page.get_attribute("#calendar-week", "aria-pressed") == "true"
            page.screenshot(path=str(tmp_path / "calendar-week.png"), full_page=True)
            assert problems == []
