"""calendar(from, to, timezone, filter) (issue 14.6): local days with their targets and the queue
slots ahead, free and taken."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from gateway.core.clock import utcnow
from gateway.storage.models import Target
from tests.engine import engine_app, new_post, sandbox_account, setup_org

CALENDAR = """query($from: Date!, $to: Date!, $tz: String!, $f: CalendarFilterInput) {
  calendar(from: $from, to: $to, timezone: $tz, filter: $f) {
    date targets { postId accountId status localTime text } slots { accountId localTime targetIds free } } }"""
SCHEDULE = """mutation($id: ID!, $at: DateTime!) { schedulePost(input: {postId: $id, publishAt: $at}) { userErrors { code } } }"""
SET_QUEUE = """mutation($i: SetPostingQueueInput!) { setPostingQueue(input: $i) { userErrors { code } } }"""
ADD = """mutation($id: ID!) { addToQueue(input: {postId: $id}) { userErrors { code } } }"""
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


async def test_days_are_local_with_targets_and_free_and_taken_slots(api):
    org = await setup_org(api)
    alice, bob = await sandbox_account(api, org.secret, "alice"), await sandbox_account(api, org.secret, "bob")
    today = utcnow().astimezone(PARIS).date()
    # 23:30 UTC two days ahead is 00:30 (or 01:30) the next day in Paris.
    late = datetime.combine(today + timedelta(days=2), time(23, 30), tzinfo=UTC)
    scheduled = await new_post(api, org.secret, [alice], text="Late evening in UTC")
    assert (await api.graphql(SCHEDULE, {"id": scheduled, "at": late.isoformat()}, key=org.secret))["data"]["schedulePost"]["userErrors"] == []
    # Bob's queue: every day at 10:00 Paris; one post takes the next slot.
    days = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
    await api.graphql(SET_QUEUE, {"i": {"accountId": bob, "timezone": "Europe/Paris",
                                        "slots": [{"dayOfWeek": d, "time": "10:00"} for d in days]}}, key=org.secret)
    queued = await new_post(api, org.secret, [bob], text="Queued for Bob")
    assert (await api.graphql(ADD, {"id": queued}, key=org.secret))["data"]["addToQueue"]["userErrors"] == []

    start, end = today + timedelta(days=1), today + timedelta(days=4)
    body = await api.graphql(CALENDAR, {"from": start.isoformat(), "to": end.isoformat(), "tz": "Europe/Paris"}, key=org.secret)
    calendar = body["data"]["calendar"]
    assert [d["date"] for d in calendar] == [(start + timedelta(days=n)).isoformat() for n in range(4)]
    by_date = {d["date"]: d for d in calendar}
    evening = by_date[(today + timedelta(days=3)).isoformat()]
    assert [(t["postId"], t["status"], t["localTime"]) for t in evening["targets"]] == [
        (scheduled, "scheduled", late.astimezone(PARIS).strftime("%H:%M"))
    ]
    # Every day has Bob's 10:00 slot; the first one in range holds the queued post (today's, if still ahead, is outside the range).
    assert all([(s["accountId"], s["localTime"]) for s in d["slots"]] == [(bob, "10:00")] for d in calendar)
    first_slot_day = today if datetime.combine(today, time(10), tzinfo=PARIS) > utcnow() else today + timedelta(days=1)
    taken = [d["date"] for d in calendar if d["slots"][0]["targetIds"]]
    assert taken == ([first_slot_day.isoformat()] if first_slot_day >= start else [])
    assert all(s["free"] == 1 - len(s["targetIds"]) for d in calendar for s in d["slots"])

    only_alice = await api.graphql(CALENDAR, {"from": start.isoformat(), "to": end.isoformat(), "tz": "Europe/Paris",
                                              "f": {"accountIds": [alice]}}, key=org.secret)
    assert [(d["date"], len(d["targets"]), len(d["slots"])) for d in only_alice["data"]["calendar"] if d["targets"] or d["slots"]] == [
        (evening["date"], 1, 0)
    ]
    published_only = await api.graphql(CALENDAR, {"from": start.isoformat(), "to": end.isoformat(), "tz": "UTC",
                                                  "f": {"statuses": ["published"]}}, key=org.secret)
    assert all(d["targets"] == [] and d["slots"] == [] for d in published_only["data"]["calendar"])


async def test_a_published_target_shows_on_the_day_it_went_out(api):
    org = await setup_org(api)
    alice = await sandbox_account(api, org.secret, "alice")
    post = await new_post(api, org.secret, [alice])
    went_out = datetime(2026, 6, 1, 22, 15, tzinfo=UTC)  # 2 June, 00:15 in Paris
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).values(status="published", published_at=went_out, publish_at=went_out - timedelta(days=9)))
    body = await api.graphql(CALENDAR, {"from": "2026-06-01", "to": "2026-06-02", "tz": "Europe/Paris"}, key=org.secret)
    assert [(d["date"], [(t["postId"], t["localTime"]) for t in d["targets"]]) for d in body["data"]["calendar"]] == [
        ("2026-06-01", []), ("2026-06-02", [(post, "00:15")]),
    ]


async def test_calendar_arguments_are_checked(api):
    org = await setup_org(api)
    for variables, field in (
        ({"from": "2026-06-02", "to": "2026-06-01", "tz": "UTC"}, "to"),
        ({"from": "2026-01-01", "to": "2026-12-31", "tz": "UTC"}, "to"),
        ({"from": "2026-06-01", "to": "2026-06-02", "tz": "Nowhere/Land"}, "timezone"),
        ({"from": "0001-01-01", "to": "0001-01-02", "tz": "Europe/Paris"}, "from"),
        ({"from": "9999-12-30", "to": "9999-12-31", "tz": "Pacific/Kiritimati"}, "from"),
        ({"from": "2026-06-01", "to": "2026-06-02", "tz": "UTC", "f": {"statuses": ["bogus"]}}, "filter.statuses"),
    ):
        body = await api.graphql(CALENDAR, variables, key=org.secret)
        assert body["data"]["calendar"] is None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
