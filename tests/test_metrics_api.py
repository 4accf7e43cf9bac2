"""The metrics surface: null vs zero from a platform's answer to GraphQL, totals that say who
reported, series, analytics, topPosts, bestTimes, refreshMetrics, the export, and statement
counts that do not grow with the page."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.accounts.accounts import seal_credentials
from gateway.auth.keys import mint_key
from gateway.cli import app as cli
from gateway.core.ids import new_id
from gateway.metrics.records import day_number
from gateway.storage.models import Account, Post, Target, TargetMetrics, TargetMetricSnapshot
from providers import new_http_client
from tests.conftest import make_org_with_key
from tests.engine import engine_app, sandbox_account, setup_org
from tests.metrics_helpers import Clock, collector, published_post
from tests.row_counts import selects_of

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
FIGURES = "views reach likes comments shares reposts quotes saves clicks videoWatchSeconds"
TARGET_METRICS = f"""query($id: ID!) {{ node(id: $id) {{ ... on Target {{ metrics {{ latest {{ {FIGURES} capturedAt extra }} }} }} }} }}"""
POST_METRICS = f"""query($id: ID!) {{ node(id: $id) {{ ... on Post {{ metrics {{ latest {{ {FIGURES} targets engagementRate
  reportedBy {{ {FIGURES} }} }} }} }} }} }}"""


async def seed(api, organization_id: str, account_id: str, provider: str, published: list[datetime], **figures) -> list[str]:
    """Published posts with one target each and their latest figures, written directly (no platform)."""
    post_ids = []
    async with api.runtime.database.write() as session:
        for n, at in enumerate(published):
            post = Post(id=new_id("post"), organization_id=organization_id, text=f"seeded {n}", campaign_id=figures.get("campaign"))
            target = Target(id=new_id("tgt"), post_id=post.id, account_id=account_id, organization_id=organization_id,
                            provider=provider, status="published", platform_post_id=f"p{n}", published_at=at)
            values = {k: (v(n) if callable(v) else v) for k, v in figures.items() if k != "campaign"}
            session.add_all([post, target])
            await session.flush()
            session.add(TargetMetrics(target_id=target.id, organization_id=organization_id, post_id=post.id, account_id=account_id,
                                      provider=provider, campaign_id=figures.get("campaign"), published_at=at, refreshed_at=at + timedelta(hours=1),
                                      **values))
            post_ids.append(post.id)
    return post_ids


# -- null vs zero, end to end ----------------------------------------------------------------

MASTODON = "https://mastodon.social"


def mastodon_status(status_id: str) -> dict:
    """A real ``GET /api/v1/statuses`` element of a Mastodon before 4.5: no quotes_count at all."""
    return {
        "id": status_id, "created_at": "2026-03-02T09:00:00.000Z", "in_reply_to_id": None, "sensitive": False, "spoiler_text": "",
        "visibility": "public", "language": "en", "uri": f"{MASTODON}/users/gate/statuses/{status_id}",
        "url": f"{MASTODON}/@gate/{status_id}", "replies_count": 0, "reblogs_count": 3, "favourites_count": 12,
        "content": "<p>hello</p>", "account": {"id": "109382", "username": "gate", "acct": "gate"}, "media_attachments": [],
    }


async def test_a_counter_the_platform_leaves_out_reaches_graphql_as_null_and_a_zero_as_zero(tmp_path, monkeypatch):
    sent = []

    def platform(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/accounts/verify_credentials":  # the account's totals, read in the same round
            return httpx.Response(200, json={"id": "109382", "username": "gate", "acct": "gate", "followers_count": 10,
                                             "following_count": 0, "statuses_count": 40})
        sent.append(request)
        assert request.url.path == "/api/v1/statuses" and request.url.params.get_list("id[]") == ["113801"]
        return httpx.Response(200, json=[mastodon_status("113801")])

    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        await api.runtime.http.aclose()
        api.runtime.http = new_http_client(httpx.MockTransport(platform))
        account_id = new_id("acct")
        async with api.runtime.database.write() as session:
            session.add(Account(id=account_id, organization_id=org.organization_id, provider="mastodon", external_id="109382",
                                handle="@gate@mastodon.social", credentials=b""))
            await session.flush()
            account = await session.get(Account, account_id)
            account.credentials = seal_credentials(api.runtime.secret_key, account_id, {"instance_url": MASTODON, "access_token": "tok"})
        (post_id,) = await seed(api, org.organization_id, account_id, "mastodon", [T0])
        async with api.runtime.database.write() as session:
            target = (await session.execute(select(Target).where(Target.post_id == post_id))).scalar_one()
            target.platform_post_id = "113801"
            (await session.get(TargetMetrics, target.id)).refreshed_at = None
            (await session.get(TargetMetrics, target.id)).next_refresh_at = T0
        Clock(monkeypatch, T0 + timedelta(minutes=1))
        assert (await collector(api).run_round()).read == [target.id]
        assert len(sent) == 1 and sent[0].headers["authorization"] == "Bearer tok"

        latest = (await api.graphql(TARGET_METRICS, {"id": target.id}, key=org.secret))["data"]["node"]["metrics"]["latest"]
        assert (latest["likes"], latest["reposts"], latest["comments"]) == (12, 3, 0)  # a measured zero stays 0
        assert latest["quotes"] is None and latest["views"] is None  # not reported: null, never 0
        totals = (await api.graphql(POST_METRICS, {"id": post_id}, key=org.secret))["data"]["node"]["metrics"]["latest"]
        assert (totals["likes"], totals["quotes"], totals["targets"]) == (12, None, 1)
        assert (totals["reportedBy"]["likes"], totals["reportedBy"]["quotes"], totals["reportedBy"]["comments"]) == (1, 0, 1)
        assert totals["engagementRate"] is None  # no views: no rate, rather than a made-up one


async def test_post_totals_sum_what_targets_reported_and_say_how_many_did(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        one, two = await sandbox_account(api, org.secret, "one"), await sandbox_account(api, org.secret, "two")
        post_id, targets = await published_post(api, org.secret, [one, two])
        Clock(monkeypatch, targets[0].published_at + timedelta(minutes=10))
        await collector(api).run_round()
        totals = (await api.graphql(POST_METRICS, {"id": post_id}, key=org.secret))["data"]["node"]["metrics"]["latest"]
        per_target = [
            (await api.graphql(TARGET_METRICS, {"id": t.id}, key=org.secret))["data"]["node"]["metrics"]["latest"] for t in targets
        ]
        assert totals["likes"] == sum(t["likes"] for t in per_target) and totals["targets"] == 2
        assert totals["quotes"] is None and totals["reportedBy"]["quotes"] == 0 and totals["reportedBy"]["views"] == 2
        assert totals["engagementRate"] == pytest.approx(
            sum(t[f] for t in per_target for f in ("likes", "comments", "shares", "reposts", "saves", "clicks")) / totals["views"]
        )


async def test_metrics_need_the_analytics_scope(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        post_id, _ = await published_post(api, org.secret, [account])
        stranger = await make_org_with_key(api.runtime, "Other")
        async with api.runtime.database.write() as session:
            narrow = await mint_key(session, org.organization_id, ["posts:read"])
        body = await api.graphql(POST_METRICS, {"id": post_id}, key=narrow.secret)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await api.graphql(POST_METRICS, {"id": post_id}, key=stranger.secret))["data"]["node"] is None  # another org's post


# -- series -------------------------------------------------------------------------------------

SERIES = """query($id: ID!, $from: DateTime!, $to: DateTime!, $i: MetricInterval!) { node(id: $id) { ... on Target {
  metrics { series(from: $from, to: $to, interval: $i) { at capturedAt likes quotes } } } } }"""


async def test_a_series_has_the_last_reading_of_each_step(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        (post_id,) = await seed(api, org.organization_id, account, "sandbox", [T0])
        async with api.runtime.database.write() as session:
            target_id = (await session.execute(select(Target.id).where(Target.post_id == post_id))).scalar_one()
            for n in range(12):  # every 15 minutes for three hours
                at = T0 + timedelta(minutes=15 * n)
                session.add(TargetMetricSnapshot(organization_id=org.organization_id, target_id=target_id, captured_at=at, day=day_number(at), likes=n))
        variables = {"id": target_id, "from": T0.isoformat(), "to": (T0 + timedelta(hours=3)).isoformat(), "i": "HOUR"}
        points = (await api.graphql(SERIES, variables, key=org.secret))["data"]["node"]["metrics"]["series"]
        assert [(p["at"][11:16], p["likes"], p["quotes"]) for p in points] == [("09:00", 3, None), ("10:00", 7, None), ("11:00", 11, None)]
        daily = (await api.graphql(SERIES, {**variables, "i": "DAY"}, key=org.secret))["data"]["node"]["metrics"]["series"]
        assert [(p["at"][:10], p["likes"]) for p in daily] == [("2026-03-02", 11)]
        backwards = await api.graphql(SERIES, {**variables, "to": variables["from"]}, key=org.secret)
        assert backwards["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# -- analytics, top posts, best times -----------------------------------------------------------

ANALYTICS = """query($f: AnalyticsFilter!, $g: [AnalyticsGroupKey!]) { analytics(filter: $f, groupBy: $g) {
  totals { posts targets likes views quotes engagementRate reportedBy { likes quotes } }
  groups { keys { provider accountId day week } posts likes views quotes } } }"""


async def test_analytics_totals_and_groups_by_day_and_provider(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        a, b = await sandbox_account(api, org.secret, "a"), await sandbox_account(api, org.secret, "b")
        await seed(api, org.organization_id, a, "sandbox", [T0, T0 + timedelta(hours=2)], likes=lambda n: 10 + n, views=100)
        await seed(api, org.organization_id, b, "other", [T0 + timedelta(days=1)], likes=5)  # views not reported
        await seed(api, org.organization_id, b, "other", [T0 + timedelta(days=40)], likes=1000)  # outside the window
        window = {"from": T0.isoformat(), "to": (T0 + timedelta(days=30)).isoformat()}
        body = await api.graphql(ANALYTICS, {"f": window, "g": ["DAY", "PROVIDER"]}, key=org.secret)
        result = body["data"]["analytics"]
        assert result["totals"] == {"posts": 3, "targets": 3, "likes": 26, "views": 200, "quotes": None,
                                    "engagementRate": pytest.approx(26 / 200), "reportedBy": {"likes": 3, "quotes": 0}}
        assert [(g["keys"]["day"], g["keys"]["provider"], g["posts"], g["likes"], g["views"]) for g in result["groups"]] == [
            ("2026-03-02", "sandbox", 2, 21, 200), ("2026-03-03", "other", 1, 5, None),
        ]
        weekly = (await api.graphql(ANALYTICS, {"f": {**window, "accountIds": [a]}, "g": ["WEEK"]}, key=org.secret))["data"]["analytics"]
        assert [(g["keys"]["week"], g["likes"]) for g in weekly["groups"]] == [("2026-03-02", 21)]
        too_long = await api.graphql(ANALYTICS, {"f": {"from": T0.isoformat(), "to": (T0 + timedelta(days=400)).isoformat()}}, key=org.secret)
        assert too_long["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        # An instant without its UTC offset is the caller's to fix, never a server error (found by schemathesis).
        naive = {"from": "2000-01-01T00:00:00", "to": "2000-01-01T00:00:00.000001"}
        unplaced = await api.graphql(ANALYTICS, {"f": naive}, key=org.secret)
        assert unplaced["errors"][0]["extensions"] | {"requestId": None} == {"code": "BAD_USER_INPUT", "field": "from", "requestId": None}
        top = await api.graphql(TOP, {"m": "LIKES", "from": T0.isoformat(), "to": "2026-04-01T00:00:00"}, key=org.secret)
        assert top["errors"][0]["extensions"]["field"] == "to"


TOP = """query($m: MetricName!, $from: DateTime!, $to: DateTime!) { topPosts(metric: $m, from: $from, to: $to, first: 2) {
  value targetsReporting post { id text } } }"""


async def test_top_posts_rank_by_a_figure_and_leave_out_posts_that_never_reported_it(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        ids = await seed(api, org.organization_id, account, "sandbox", [T0 + timedelta(hours=n) for n in range(4)],
                         likes=lambda n: [5, 50, 0, None][n])
        variables = {"m": "LIKES", "from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}
        top = (await api.graphql(TOP, variables, key=org.secret))["data"]["topPosts"]
        assert [(t["post"]["id"], t["value"]) for t in top] == [(ids[1], 50), (ids[0], 5)]
        everything = (await api.graphql(TOP.replace("first: 2", "first: 10"), variables, key=org.secret))["data"]["topPosts"]
        assert [t["post"]["id"] for t in everything] == [ids[1], ids[0], ids[2]]  # 0 is a figure; None is not


BEST = """query($tz: String!, $acct: ID) { bestTimes(timezone: $tz, metric: LIKES, accountId: $acct) {
  basis samples minSamplesPerCell cells { weekday hour score samples } } }"""


async def test_best_times_grid_in_a_timezone_with_a_minimum_sample_and_a_fallback(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        Clock(monkeypatch, T0 + timedelta(days=30))
        few = await api.graphql(BEST, {"tz": "Europe/Paris", "acct": account}, key=org.secret)
        assert few["data"]["bestTimes"]["basis"] == "DEFAULT" and few["data"]["bestTimes"]["samples"] == 0
        assert len(few["data"]["bestTimes"]["cells"]) == 168
        # Monday 09:00 UTC is 10:00 in Paris: 12 posts there do well, 9 on Tuesday 09:00 UTC less; 2 on Friday too few to score.
        await seed(api, org.organization_id, account, "sandbox", [T0 + timedelta(weeks=n % 3, minutes=n) for n in range(12)], likes=100)
        await seed(api, org.organization_id, account, "sandbox", [T0 + timedelta(days=1, weeks=n % 3) for n in range(9)], likes=25)
        await seed(api, org.organization_id, account, "sandbox", [T0 + timedelta(days=4), T0 + timedelta(days=11)], likes=500)
        grid = (await api.graphql(BEST, {"tz": "Europe/Paris", "acct": account}, key=org.secret))["data"]["bestTimes"]
        cells = {(c["weekday"], c["hour"]): c for c in grid["cells"]}
        assert (grid["basis"], grid["samples"], grid["minSamplesPerCell"]) == ("ACCOUNT", 23, 3)
        assert (cells[(0, 10)]["score"], cells[(0, 10)]["samples"]) == (1.0, 12)
        assert (cells[(1, 10)]["score"], cells[(1, 10)]["samples"]) == (0.25, 9)
        assert (cells[(4, 10)]["score"], cells[(4, 10)]["samples"]) == (None, 2)  # below the minimum: no score
        for wrong in ("Mars/Olympus", "../etc/passwd", "a" * 300, ""):
            bad = await api.graphql(BEST, {"tz": wrong}, key=org.secret)
            assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", wrong


# -- refreshMetrics -------------------------------------------------------------------------------

REFRESH = """mutation($i: RefreshMetricsInput!) { refreshMetrics(input: $i) { job { id kind status progress { done total } }
  userErrors { field code } } }"""
JOB = "query($id: ID!) { job(id: $id) { status progress { done total } result } }"


async def test_refresh_metrics_returns_a_job_the_collector_runs(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        post_id, (target,) = await published_post(api, org.secret, [account])
        Clock(monkeypatch, target.published_at + timedelta(minutes=2))
        payload = (await api.graphql(REFRESH, {"i": {"accountId": account}}, key=org.secret))["data"]["refreshMetrics"]
        assert payload["userErrors"] == [] and payload["job"]["kind"] == "metrics_refresh"
        assert (payload["job"]["status"], payload["job"]["progress"]) == ("QUEUED", {"done": 0, "total": 1})
        await collector(api).run_round()
        job = (await api.graphql(JOB, {"id": payload["job"]["id"]}, key=org.secret))["data"]["job"]
        assert (job["status"], job["progress"], job["result"]["read"]) == ("SUCCEEDED", {"done": 1, "total": 1}, [target.id])
        errors = (await api.graphql(REFRESH, {"i": {"postId": post_id, "accountId": account}}, key=org.secret))["data"]["refreshMetrics"]
        assert errors == {"job": None, "userErrors": [{"field": ["input"], "code": "ONE_SELECTION_REQUIRED"}]}
        unknown = (await api.graphql(REFRESH, {"i": {"targetIds": ["tgt_nope"]}}, key=org.secret))["data"]["refreshMetrics"]
        assert unknown["userErrors"][0]["code"] == "TARGET_NOT_PUBLISHED"


# -- no N+1 ----------------------------------------------------------------------------------------

PAGE = """query($n: Int!) { posts(first: $n) { nodes { id metrics { latest { likes targets } }
  targets { metrics { latest { likes } } } } } }"""


async def test_the_statement_count_of_a_page_of_post_metrics_does_not_grow_with_the_page(tmp_path, monkeypatch):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        for n in range(12):
            await published_post(api, org.secret, [account], text=f"post {n}")
        Clock(monkeypatch, T0 + timedelta(days=400))
        await api.runtime.relay.stop()  # only the request's statements count

        small, few = await selects_of(api, PAGE, {"n": 10}, org.secret)
        large, many = await selects_of(api, PAGE, {"n": 100}, org.secret)
        assert len(small["data"]["posts"]["nodes"]) == 10 and len(large["data"]["posts"]["nodes"]) == 12
        assert few == many


# -- export ------------------------------------------------------------------------------------------


async def _exportable(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        await seed(api, org.organization_id, account, "sandbox", [T0, T0 + timedelta(days=1)], likes=lambda n: [0, 7][n])
    return org


def test_export_analytics_writes_csv_and_json_with_nulls_kept_apart(tmp_path):
    org = asyncio.run(_exportable(tmp_path))  # the CLI runs its own event loop
    env = {"SOCIALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/engine.db", "SOCIALGATE_DATA_DIR": str(tmp_path)}
    args = ["export", "analytics", "--org", org.organization_id, "--from", "2026-03-01", "--to", "2026-03-31", "--group-by", "day"]
    runner = CliRunner()
    as_csv = runner.invoke(cli, args, env=env)
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["day"], r["posts"], r["likes"], r["views"], r["likes_reported_by"]) for r in rows] == [
        ("2026-03-02", "1", "0", "", "1"), ("2026-03-03", "1", "7", "", "1"),
    ]
    as_json = runner.invoke(cli, [*args, "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert [(r["day"], r["likes"], r["views"]) for r in document["rows"]] == [("2026-03-02", 0, None), ("2026-03-03", 7, None)]
    refused = runner.invoke(cli, [*args, "--group-by", "month"], env=env)
    assert refused.exit_code != 0


PROVIDERS = "{ providers { id capabilities { metrics } metrics { post account batchSize lookbackDays minIntervalSeconds } } }"


async def test_providers_say_which_figures_they_read_and_telegram_and_discord_read_none(api, org):
    providers = {p["id"]: p for p in (await api.graphql(PROVIDERS, key=org.secret))["data"]["providers"]}
    assert providers["bluesky"]["metrics"] == {
        "post": ["likes", "comments", "reposts", "quotes", "saves"], "account": ["followers", "following", "posts"],
        "batchSize": 25, "lookbackDays": None, "minIntervalSeconds": 300,
    }
    assert providers["x"]["metrics"]["batchSize"] == 100 and "views" in providers["x"]["metrics"]["post"]
    for silent in ("telegram", "discord"):
        assert providers[silent]["metrics"] is None and providers[silent]["capabilities"]["metrics"] is False
    assert all((p["metrics"] is not None) == p["capabilities"]["metrics"] for p in providers.values())
