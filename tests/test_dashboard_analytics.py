"""/dashboard/analytics: served with its vendored chart library and licence, then drawn in headless
Chromium from a history written into the running server's database: top posts, a post's and an
account's line charts whose canvases hold the series' colours, and the best-times heatmap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gateway.core.ids import new_id
from gateway.metrics.records import day_number
from gateway.storage.models import Account, AccountMetricSnapshot, Post, Target, TargetMetrics, TargetMetricSnapshot
from tests.browser import WAIT_MS, chromium, needs_chromium, page_problems
from tests.demo_server import demo_key, graphql
from tests.servers import serve

LIKES_RGB = (37, 99, 235)  # analytics.js COLORS.likes
FOLLOWERS_RGB = (124, 58, 237)  # analytics.js COLORS.followers
COUNT_PIXELS = """([selector, rgb]) => {
  const canvas = document.querySelector(selector + ' canvas');
  const { width, height } = canvas;
  const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let painted = 0, series = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] > 0) painted++;
    if (Math.abs(pixels[i] - rgb[0]) < 24 && Math.abs(pixels[i + 1] - rgb[1]) < 24 && Math.abs(pixels[i + 2] - rgb[2]) < 24 && pixels[i + 3] > 128) series++;
  }
  return { painted, series };
}"""


async def test_the_analytics_page_and_its_chart_library_are_served_with_its_licence(api):
    page = await api.http.get("/dashboard/analytics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="vendor/uplot.min.js"' in page.text and 'src="analytics.js"' in page.text
    library = await api.http.get("/dashboard/vendor/uplot.min.js")
    assert library.status_code == 200 and "uPlot" in library.text
    assert (await api.http.get("/dashboard/vendor/uplot.min.css")).headers["content-type"].startswith("text/css")
    licence = await api.http.get("/dashboard/vendor/uplot.LICENSE")
    assert "The MIT License" in licence.text and "Leon Sorokin" in licence.text
    script = (await api.http.get("/dashboard/analytics.js")).text
    assert "innerHTML" not in script and "new uPlot(" in script
    assert (await api.http.get("/dashboard/vendor/uPlot.iife.min.js")).status_code == 404  # only the listed names


def seed_history(database: Path, organization_id: str, now: datetime) -> tuple[str, list[str]]:
    """An account with 48 hourly readings of its followers, and three posts with 48 hourly readings each."""
    engine = create_engine(f"sqlite:///{database}")
    account_id = new_id("acct")
    post_ids = []
    with Session(engine) as session, session.begin():
        session.add(Account(id=account_id, organization_id=organization_id, provider="sandbox", external_id="charts", handle="charts"))
        session.flush()
        for n, likes in enumerate((30, 120, 60)):
            post = Post(id=new_id("post"), organization_id=organization_id, text=f"Chart post {n} ({likes} likes)")
            published = now - timedelta(hours=49)
            target = Target(id=new_id("tgt"), post_id=post.id, account_id=account_id, organization_id=organization_id, provider="sandbox",
                            status="published", platform_post_id=f"sb_chart_{n}", published_at=published)
            session.add_all([post, target])
            session.flush()
            session.add(TargetMetrics(target_id=target.id, organization_id=organization_id, post_id=post.id, account_id=account_id,
                                      provider="sandbox", published_at=published, refreshed_at=now, likes=likes, views=likes * 20))
            for hour in range(48):
                at = now - timedelta(hours=47 - hour)
                session.add(TargetMetricSnapshot(organization_id=organization_id, target_id=target.id, captured_at=at, day=day_number(at),
                                                 likes=likes * hour // 47, views=likes * 20 * hour // 47, reposts=None))
            post_ids.append(post.id)
        for hour in range(48):
            at = now - timedelta(hours=47 - hour)
            session.add(AccountMetricSnapshot(organization_id=organization_id, account_id=account_id, captured_at=at, day=day_number(at),
                                              followers=1000 + 5 * hour, following=10, posts=3))
    engine.dispose()
    return account_id, post_ids


@pytest.mark.e2e
@needs_chromium
def test_the_analytics_page_draws_series_top_posts_and_the_best_times_heatmap(tmp_path):
    with serve(tmp_path, "--demo") as server:
        key = demo_key(server.stdout())
        organization_id = graphql(server, key, "{ viewer { organization { id } } }")["viewer"]["organization"]["id"]
        (database,) = [p for p in tmp_path.rglob("*.db")]
        # Readings end a minute before this hour began: all 48 fall in distinct past hours, whatever the time.
        _, post_ids = seed_history(database, organization_id, datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(minutes=1))
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = page_problems(page)
            page.goto(server.base_url + "/dashboard/analytics")
            page.fill("#api-key", key)
            page.click("#connect")
            page.wait_for_selector('#post-chart[data-points="48"] canvas', timeout=WAIT_MS)
            page.wait_for_selector('#account-chart[data-points="48"] canvas', timeout=WAIT_MS)
            rows = page.query_selector_all("#top-posts tbody tr")
            assert [r.get_attribute("data-post-id") for r in rows] == [post_ids[1], post_ids[2], post_ids[0]]
            assert page.text_content("#top-posts tbody tr td") == "120"
            post = page.evaluate(COUNT_PIXELS, ["#post-chart", list(LIKES_RGB)])
            account = page.evaluate(COUNT_PIXELS, ["#account-chart", list(FOLLOWERS_RGB)])
            assert post["series"] > 100 and account["series"] > 100, (post, account)  # the lines are drawn, not only axes
            assert page.get_attribute("#best-times", "data-basis") == "DEFAULT"  # three posts: too little history
            assert len(page.query_selector_all("#best-times tbody td")) == 7 * 24
            assert len(page.query_selector_all("#best-times tbody td[data-score]")) == 7 * 24
            # Another post's series replaces the chart when its row is clicked.
            page.click(f'#top-posts tbody tr[data-post-id="{post_ids[0]}"]')
            page.wait_for_function("() => document.querySelector('#post-title').textContent.startsWith('Chart post 0')", timeout=WAIT_MS)
            page.screenshot(path=str(tmp_path / "analytics.png"), full_page=True)
            assert problems == []
