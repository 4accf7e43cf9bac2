"""Recurring posts (issue 14, point 8): anchored to the first publishAt + k·interval in local time,
DST-correct, one occurrence scheduled at a time, and a backlog never fires a burst."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from gateway.campaigns.recurrence import advance_recurrences, next_occurrence, occurrence_at
from gateway.core.clock import utcnow
from gateway.storage.models import OrganizationEvent, Post, Recurrence, Target
from tests.engine import engine_app, new_post, sandbox_account, scheduler_for, setup_org

SCHEDULE = """mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { userErrors { code } } }"""
SET = """mutation($input: SetPostRecurrenceInput!) { setPostRecurrence(input: $input) {
  recurrence { seriesId everyDays count anchorAt latestIndex status nextPublishAt } userErrors { field code } } }"""
READ = """query($id: ID!) { recurrence(seriesId: $id) { latestPostId latestIndex status } }"""


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "anchor", "every", "index", "expected"),
    [
        ("Europe/Paris", "2027-03-27T08:00", 1, 1, "2027-03-28T07:00"),  # 09:00 both days; summer time began
        ("Europe/Paris", "2027-10-30T07:00", 1, 1, "2027-10-31T08:00"),  # 09:00 both days; winter time began
        ("America/New_York", "2027-03-13T14:00", 1, 1, "2027-03-14T13:00"),
        ("America/New_York", "2027-11-06T13:00", 1, 1, "2027-11-07T14:00"),
        ("Europe/Paris", "2027-03-20T01:30", 7, 1, "2027-03-27T01:30"),  # 02:30 local, the night before the change
        ("Europe/Paris", "2027-03-21T01:30", 7, 1, "2027-03-28T01:30"),  # 02:30 does not exist that night: 03:30 (+02:00)
        ("UTC", "2027-01-01T09:00", 3, 3, "2027-01-10T09:00"),
    ],
)
def test_occurrences_keep_the_local_time_across_dst(zone, anchor, every, index, expected):
    assert occurrence_at(_utc(anchor), every, index, zone) == _utc(expected)


def _series(anchor: datetime, **fields) -> Recurrence:
    return Recurrence(id="post_x", organization_id="org_x", every_days=1, timezone="Europe/Paris", anchor_at=anchor,
                      last_post_id="post_x", **{"count": 30, "until": None, "last_index": 0, **fields})


def test_a_backlog_skips_to_the_first_occurrence_ahead():
    anchor = _utc("2027-03-20T08:00")
    now = anchor + timedelta(days=10, hours=12)
    index, at = next_occurrence(_series(anchor), now)
    assert index == 11 and at > now and at - now < timedelta(days=1)
    assert at.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") == "09:00"
    assert next_occurrence(_series(anchor, last_index=4), anchor + timedelta(hours=1)) == (5, occurrence_at(anchor, 1, 5, "Europe/Paris"))


def test_a_series_ends_after_count_or_until():
    anchor = _utc("2027-01-01T09:00")
    assert next_occurrence(_series(anchor, count=5, last_index=4), anchor) is None
    assert next_occurrence(_series(anchor, count=5, last_index=1), anchor + timedelta(days=20)) is None
    assert next_occurrence(_series(anchor, count=None, until=anchor + timedelta(days=2), last_index=2), anchor) is None
    assert next_occurrence(_series(anchor, count=None, until=anchor + timedelta(days=2), last_index=1), anchor)[0] == 2


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def _scheduled_post(api, org, at: datetime) -> str:
    account = await sandbox_account(api, org.secret)
    post = await new_post(api, org.secret, [account], text="evergreen")
    assert (await api.graphql(SCHEDULE, {"id": post, "at": at.isoformat()}, key=org.secret))["data"]["schedulePost"]["userErrors"] == []
    return post


async def _finish(api, post_id: str) -> None:
    """The occurrence's targets as the engine leaves them once published."""
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).where(Target.post_id == post_id).values(status="published", next_attempt_at=None))


async def _posts(api) -> int:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(Post))).scalar_one()


async def test_occurrences_follow_one_at_a_time_and_a_backlog_fires_once(api):
    org = await setup_org(api)
    anchor = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    first = await _scheduled_post(api, org, anchor)
    body = await api.graphql(SET, {"input": {"postId": first, "everyDays": 2, "count": 10, "timezone": "Europe/Paris"}}, key=org.secret)
    series = body["data"]["setPostRecurrence"]["recurrence"]
    assert (series["seriesId"], series["latestIndex"], series["status"]) == (first, 0, "active")
    assert _utc(series["nextPublishAt"][:19]) == occurrence_at(anchor, 2, 1, "Europe/Paris")

    assert await advance_recurrences(api.runtime) == 0  # the first occurrence is still waiting
    await _finish(api, first)
    assert await advance_recurrences(api.runtime, anchor + timedelta(minutes=5)) == 1
    latest = (await api.graphql(READ, {"id": first}, key=org.secret))["data"]["recurrence"]
    assert latest["latestIndex"] == 1
    async with api.runtime.database.read() as session:
        due = list((await session.execute(select(Target.status, Target.next_attempt_at).where(Target.post_id == latest["latestPostId"]))).all())
    assert due == [("scheduled", occurrence_at(anchor, 2, 1, "Europe/Paris"))]
    assert await advance_recurrences(api.runtime, anchor + timedelta(days=1)) == 0  # one occurrence at a time

    # The second occurrence ran; then nothing ran for nine days. One post follows, at the first time ahead.
    await _finish(api, latest["latestPostId"])
    before = await _posts(api)
    late = anchor + timedelta(days=11, hours=1)
    assert await advance_recurrences(api.runtime, late) == 1
    assert await _posts(api) == before + 1
    latest = (await api.graphql(READ, {"id": first}, key=org.secret))["data"]["recurrence"]
    assert latest["latestIndex"] == 6  # occurrences 2 to 5 fell in the backlog and were skipped
    async with api.runtime.database.read() as session:
        event = (await session.execute(select(OrganizationEvent).where(OrganizationEvent.kind == "post.recurrence_scheduled")
                                       .order_by(OrganizationEvent.id.desc()).limit(1))).scalar_one()
    assert event.payload["skipped"] == 4 and _utc(event.payload["publishAt"][:19]) == occurrence_at(anchor, 2, 6, "Europe/Paris")


async def test_the_series_finishes_after_its_count(api):
    org = await setup_org(api)
    anchor = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    first = await _scheduled_post(api, org, anchor)
    await api.graphql(SET, {"input": {"postId": first, "everyDays": 1, "count": 2}}, key=org.secret)
    await _finish(api, first)
    assert await advance_recurrences(api.runtime, anchor) == 1
    second = (await api.graphql(READ, {"id": first}, key=org.secret))["data"]["recurrence"]["latestPostId"]
    await _finish(api, second)
    assert await advance_recurrences(api.runtime, anchor + timedelta(days=1, minutes=1)) == 1
    assert (await api.graphql(READ, {"id": first}, key=org.secret))["data"]["recurrence"]["status"] == "finished"
    assert await _posts(api) == 2


async def test_the_schedulers_chore_makes_the_next_occurrence(api):
    org = await setup_org(api)
    anchor = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    first = await _scheduled_post(api, org, anchor)
    await api.graphql(SET, {"input": {"postId": first, "everyDays": 1, "count": 3}}, key=org.secret)
    async with api.runtime.database.write() as session:  # its time came
        await session.execute(update(Target).where(Target.post_id == first).values(next_attempt_at=utcnow()))
    await scheduler_for(api).drain()
    async with api.runtime.database.read() as session:
        assert set((await session.execute(select(Target.status).where(Target.post_id == first))).scalars()) == {"published"}
    await scheduler_for(api).sweep()  # a fresh scheduler's chores run at once
    assert (await api.graphql(READ, {"id": first}, key=org.secret))["data"]["recurrence"]["latestIndex"] == 1


async def test_bad_recurrences_are_user_errors(api):
    org = await setup_org(api)
    account = await sandbox_account(api, org.secret)
    draft = await new_post(api, org.secret, [account])
    scheduled = await _scheduled_post(api, org, utcnow() + timedelta(hours=2))
    cases = [
        ({"postId": draft, "everyDays": 1, "count": 3}, "POST_NOT_SCHEDULED"),
        ({"postId": scheduled, "everyDays": 0, "count": 3}, "RECURRENCE_INTERVAL_INVALID"),
        ({"postId": scheduled, "everyDays": 1}, "RECURRENCE_END_REQUIRED"),
        ({"postId": scheduled, "everyDays": 1, "count": 3, "until": "2030-01-01T00:00:00Z"}, "RECURRENCE_END_REQUIRED"),
        ({"postId": scheduled, "everyDays": 1, "count": 1}, "RECURRENCE_COUNT_INVALID"),
        ({"postId": scheduled, "everyDays": 1, "count": 3, "timezone": "Moon/Base"}, "INVALID_TIMEZONE"),
    ]
    for input, code in cases:
        errors = (await api.graphql(SET, {"input": input}, key=org.secret))["data"]["setPostRecurrence"]["userErrors"]
        assert [e["code"] for e in errors] == [code], input
