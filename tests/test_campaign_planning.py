"""scheduleCampaign (issue 14, point 2): zoneinfo-correct cadence plans with their conflicts, a dry
run that writes nothing, and an apply that is one job, all or nothing, once per idempotency key."""

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from gateway.campaigns.cadence import Cadence, resolve_local, slots
from gateway.campaigns.planning import _Load
from gateway.storage.models import Account, Job, Target
from providers import Quota, hookimpl
from tests.engine import engine_app, new_post, sandbox_account, setup_org
from tests.row_counts import row_counts

CREATE = """mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { code } } }"""
SCHEDULE = """mutation($input: ScheduleCampaignInput!) { scheduleCampaign(input: $input) {
  plan { timezone dryRun targets { postId targetId accountId localTime publishAt }
         conflicts { code resolution postId targetId localTime } unplacedTargetIds }
  job { id kind status progress { done total } events { kind payload } }
  userErrors { field code message } } }"""


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


# -- zoneinfo: the same wall-clock time across DST changes, gaps and overlaps --------------------


@pytest.mark.parametrize(
    ("zone", "wanted", "utc", "local", "dst"),
    [
        ("Europe/Paris", "2027-03-28T02:30", "2027-03-28T01:30", "2027-03-28T03:30:00+02:00", "gap"),
        ("Europe/Paris", "2027-10-31T02:30", "2027-10-31T00:30", "2027-10-31T02:30:00+02:00", "overlap"),
        ("America/New_York", "2027-03-14T02:30", "2027-03-14T07:30", "2027-03-14T03:30:00-04:00", "gap"),
        ("America/New_York", "2027-11-07T01:30", "2027-11-07T05:30", "2027-11-07T01:30:00-04:00", "overlap"),
        ("Europe/Paris", "2027-03-27T09:00", "2027-03-27T08:00", "2027-03-27T09:00:00+01:00", None),
        ("Europe/Paris", "2027-03-29T09:00", "2027-03-29T07:00", "2027-03-29T09:00:00+02:00", None),
    ],
)
def test_local_times_resolve_through_daylight_saving(zone, wanted, utc, local, dst):
    slot = resolve_local(datetime.fromisoformat(wanted), ZoneInfo(zone))
    assert slot.at == datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert slot.local.isoformat() == local and slot.dst == dst


def test_nine_in_paris_stays_nine_across_both_changes():
    for start, end in ((date(2027, 3, 26), date(2027, 3, 30)), (date(2027, 10, 29), date(2027, 11, 2))):
        found = list(slots(Cadence(times=(time(9),), start_date=start, end_date=end).checked(), ZoneInfo("Europe/Paris")))
        assert [s.local.strftime("%H:%M") for s in found] == ["09:00"] * 5
        assert len({s.at.hour for s in found}) == 2  # the UTC hour moves instead


def test_cadence_days_skips_and_posts_per_day():
    cadence = Cadence(times=(time(18), time(9), time(12)), posts_per_day=2, days_of_week=frozenset({1, 3}),
                      start_date=date(2027, 1, 4), end_date=date(2027, 1, 13), skip_dates=frozenset({date(2027, 1, 6)})).checked()
    found = [s.local.strftime("%a %d %H:%M") for s in slots(cadence, ZoneInfo("UTC"))]
    assert found == ["Mon 04 09:00", "Mon 04 12:00", "Mon 11 09:00", "Mon 11 12:00", "Wed 13 09:00", "Wed 13 12:00"]


def test_a_platform_quota_counts_a_window_on_either_side():
    load = _Load(ZoneInfo("UTC"), None, {"x": (Quota(count=2, period_seconds=3600),)})
    at = datetime(2027, 1, 1, 12, tzinfo=UTC)
    load.add("a", at)
    assert load.refusal("a", "x", at + timedelta(minutes=30)) is None
    load.add("a", at + timedelta(minutes=30))
    assert load.refusal("a", "x", at + timedelta(minutes=59))[0] == "PLATFORM_QUOTA"
    assert load.refusal("a", "x", at - timedelta(minutes=10))[0] == "PLATFORM_QUOTA"
    assert load.refusal("a", "x", at + timedelta(minutes=91)) is None
    assert load.refusal("b", "x", at) is None


# -- the API ------------------------------------------------------------------------------------


async def _campaign(api, key, **fields) -> str:
    body = await api.graphql(CREATE, {"input": {"name": "Plan", "status": "ACTIVE", **fields}}, key=key)
    return body["data"]["createCampaign"]["campaign"]["id"]


async def _setup(api, posts=3, accounts=1, **campaign_fields):
    org = await setup_org(api)
    account_ids = [await sandbox_account(api, org.secret, f"h{i}") for i in range(accounts)]
    camp = await _campaign(api, org.secret, **campaign_fields)
    post_ids = [await new_post(api, org.secret, account_ids, text=f"post {i}", campaignId=camp) for i in range(posts)]
    return org, account_ids, camp, post_ids


async def _schedule(api, key, camp, cadence, **extra) -> dict:
    body = await api.graphql(SCHEDULE, {"input": {"campaignId": camp, "cadence": cadence, **extra}}, key=key)
    return body["data"]["scheduleCampaign"]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _row_counts(api) -> dict[str, int]:
    return await row_counts(api.runtime)


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [("Europe/Paris", "2027-03-28", "2027-10-31"), ("America/New_York", "2027-03-14", "2027-11-07")],
)
async def test_dry_run_plans_across_spring_forward_and_fall_back(api, zone, spring, fall):
    org, _, camp, posts = await _setup(api, posts=4, timezone=zone)
    before = await _row_counts(api)
    plan = (await _schedule(api, org.secret, camp, {"times": ["09:00"], "startDate": spring, "endDate": spring}, dryRun=True))["plan"]
    assert plan["targets"][0]["localTime"].startswith(f"{spring}T09:00:00")
    # The nights themselves: a time in the gap moves forward, one in the overlap takes its first occurrence.
    hour = "02:30" if zone == "Europe/Paris" else "01:30"
    result = await _schedule(api, org.secret, camp, {"times": ["02:30"], "startDate": spring, "endDate": spring}, dryRun=True)
    assert result["plan"]["targets"][0]["localTime"].startswith(f"{spring}T03:30:00")
    conflicts = [(c["code"], c["resolution"]) for c in result["plan"]["conflicts"]]
    assert conflicts == [("DST_GAP", "moved forward to 03:30")] + [("NO_SLOT", "not scheduled")] * 3  # one slot, four posts
    overlap = (await _schedule(api, org.secret, camp, {"times": [hour], "startDate": fall, "endDate": fall}, dryRun=True))["plan"]
    first = resolve_local(datetime.fromisoformat(f"{fall}T{hour}"), ZoneInfo(zone))
    assert _instant(overlap["targets"][0]["publishAt"]) == first.at
    assert overlap["conflicts"][0]["code"] == "DST_OVERLAP"
    # Four posts, one slot a day: 09:00 local each day across the change, the UTC hour moving.
    days = (await _schedule(api, org.secret, camp, {"times": ["09:00"], "startDate": str(date.fromisoformat(spring) - timedelta(days=1))}, dryRun=True))["plan"]
    assert [t["localTime"][11:16] for t in days["targets"]] == ["09:00"] * 4
    assert len({t["publishAt"][11:13] for t in days["targets"]}) == 2
    assert [t["postId"] for t in days["targets"]] == posts
    assert await _row_counts(api) == before  # dry runs wrote nothing


async def test_conflicts_window_daily_quota_and_no_slot(api):
    org, accounts, camp, posts = await _setup(
        api, posts=3, timezone="UTC", startsAt="2027-01-04T10:00:00Z", endsAt="2027-01-06T00:00:00Z"
    )
    cadence = {"times": ["09:00", "12:00", "15:00", "18:00"], "startDate": "2027-01-04", "maxPerAccountPerDay": 2}
    plan = (await _schedule(api, org.secret, camp, cadence, dryRun=True))["plan"]
    placed = {t["postId"]: t["localTime"] for t in plan["targets"]}
    # 09:00 on the 4th is before the window; the daily quota moves the third post from 18:00 to the 5th.
    assert placed == {posts[0]: "2027-01-04T12:00:00+00:00", posts[1]: "2027-01-04T15:00:00+00:00", posts[2]: "2027-01-05T09:00:00+00:00"}
    codes = [(c["code"], c["postId"]) for c in plan["conflicts"]]
    assert codes == [("OUTSIDE_WINDOW", posts[0]), ("DAILY_QUOTA", posts[2])]
    assert plan["conflicts"][1]["resolution"] == "moved to 2027-01-05T09:00:00+00:00"

    more = [await new_post(api, org.secret, accounts, text=f"extra {i}", campaignId=camp) for i in range(2)]
    plan = (await _schedule(api, org.secret, camp, cadence, dryRun=True))["plan"]
    assert len(plan["unplacedTargetIds"]) == 1 and plan["conflicts"][-1]["code"] == "NO_SLOT"
    assert plan["conflicts"][-1]["postId"] == more[1]
    before = await _row_counts(api)
    refused = await _schedule(api, org.secret, camp, cadence)
    assert [e["code"] for e in refused["userErrors"]] == ["PLAN_INCOMPLETE"] and refused["job"] is None
    assert await _row_counts(api) == before


async def test_apply_is_one_job_with_progress_and_the_dry_runs_times(api):
    org, accounts, camp, posts = await _setup(api, posts=3, accounts=2, timezone="Europe/Paris")
    cadence = {"times": ["09:00", "17:30"], "startDate": "2027-03-27", "jitterMinutes": 20}
    dry = (await _schedule(api, org.secret, camp, cadence, dryRun=True))["plan"]
    result = await _schedule(api, org.secret, camp, cadence, idempotencyKey="plan-1")
    assert result["userErrors"] == []
    job = result["job"]
    assert (job["kind"], job["status"], job["progress"]) == ("campaign.schedule", "SUCCEEDED", {"done": 3, "total": 3})
    assert [e["kind"] for e in job["events"]] == ["job.running", "job.progress", "job.succeeded"]
    assert job["events"][-1]["payload"]["result"]["targets"] == 6
    assert result["plan"]["targets"] == dry["targets"]  # jitter is the same in the dry run and the apply
    async with api.runtime.database.read() as session:
        stored = {t.id: (t.status, t.next_attempt_at) for t in (await session.execute(select(Target))).scalars()}
    for planned in dry["targets"]:
        status, due = stored[planned["targetId"]]
        assert status == "scheduled"
        assert due == _instant(planned["publishAt"])
    jitters = {datetime.fromisoformat(t["localTime"]).minute % 30 for t in dry["targets"]}
    assert jitters != {0}  # the jitter moved some post off the exact time


async def test_two_concurrent_applies_with_one_key_schedule_once(api):
    org, _, camp, posts = await _setup(api, posts=4, accounts=2)
    cadence = {"times": ["08:00", "20:00"], "startDate": str(date.today() + timedelta(days=2))}
    first, second = await asyncio.gather(*(_schedule(api, org.secret, camp, cadence, idempotencyKey="once") for _ in range(2)))
    assert first["userErrors"] == second["userErrors"] == []
    assert first["job"]["id"] == second["job"]["id"]
    async with api.runtime.database.read() as session:
        kinds = list((await session.execute(select(Job.kind))).scalars())
    assert kinds.count("campaign.schedule") == 1 and kinds.count("publish") == 4
    reused = await _schedule(api, org.secret, camp, {**cadence, "times": ["07:00"]}, idempotencyKey="once")
    assert [e["code"] for e in reused["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"]


async def test_apply_is_all_or_nothing(api):
    org, accounts, camp, posts = await _setup(api, posts=3, accounts=2)
    async with api.runtime.database.write() as session:
        await session.execute(update(Account).where(Account.id == accounts[1]).values(status="disconnected"))
    before = await _row_counts(api)
    result = await _schedule(api, org.secret, camp, {"times": ["09:00"], "startDate": str(date.today() + timedelta(days=1))})
    assert "ACCOUNT_DISCONNECTED" in [e["code"] for e in result["userErrors"]] and result["job"] is None
    assert await _row_counts(api) == before
    async with api.runtime.database.read() as session:
        assert set((await session.execute(select(Target.status))).scalars()) == {"draft"}


async def test_bad_cadences_are_user_errors(api):
    org, _, camp, _ = await _setup(api, posts=1)
    cases = [
        ({"times": ["9am"]}, "CADENCE_TIMES_INVALID"),
        ({"times": []}, "CADENCE_TIMES_REQUIRED"),
        ({"times": ["09:00"], "postsPerDay": 2}, "CADENCE_TIMES_TOO_FEW"),
        ({"times": ["09:00"], "startDate": "2027-01-02", "endDate": "2027-01-01"}, "CADENCE_DATES_INVALID"),
        ({"times": ["09:00"], "startDate": "2027-01-01", "endDate": "2028-06-01"}, "CADENCE_RANGE_TOO_LONG"),
        ({"times": ["09:00"], "jitterMinutes": 500}, "CADENCE_JITTER_INVALID"),
    ]
    for cadence, code in cases:
        result = await _schedule(api, org.secret, camp, cadence, dryRun=True)
        assert [e["code"] for e in result["userErrors"]] == [code], cadence
    result = await _schedule(api, org.secret, camp, {"times": ["09:00"]}, dryRun=True, timezone="Nowhere/Land")
    assert [e["code"] for e in result["userErrors"]] == ["INVALID_TIMEZONE"]


class CountingPolicy:
    """A policy plugin (validate_post): its checks must run before the plan's transaction, each post once."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    async def validate_post(self, draft):
        self.calls += 1
        return []


async def test_apply_with_a_policy_hook_checks_every_post_before_its_transaction(api):
    org, _, camp, posts = await _setup(api, posts=6)
    policy = CountingPolicy()
    assert api.runtime.plugins.add("counting-policy", policy).error is None
    result = await _schedule(api, org.secret, camp, {"times": ["09:00"], "startDate": str(date.today() + timedelta(days=1))})
    assert result["userErrors"] == [] and result["job"]["progress"] == {"done": 6, "total": 6}
    assert policy.calls == 6  # once per post: no transaction was rolled back to run a check


async def test_dates_far_from_today_are_refused_not_overflowed(api):
    org, _, camp, _ = await _setup(api, posts=1)
    for cadence in ({"times": ["09:00"], "startDate": "9999-12-30"}, {"times": ["09:00"], "startDate": "0001-01-01", "endDate": "0001-01-02"}):
        result = await _schedule(api, org.secret, camp, cadence, dryRun=True)
        assert [e["code"] for e in result["userErrors"]] == ["CADENCE_DATES_INVALID"], cadence
