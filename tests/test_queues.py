"""Posting queues (issue 14.3): weekly slots per account or org default, addToQueue into the next
free slot, the queue preview, and a change of slots moving what is queued and saying how many."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.calendar.slots import Slot, instants
from gateway.core.clock import utcnow
from gateway.storage.models import Target
from tests.engine import engine_app, new_post, sandbox_account, setup_org

SET_QUEUE = """mutation($i: SetPostingQueueInput!) { setPostingQueue(input: $i) {
  queue { accountId timezone slots { dayOfWeek time } maxPerSlot } moved userErrors { field code } } }"""
ADD = """mutation($id: ID!) { addToQueue(input: {postId: $id}) { slots { targetId at } userErrors { code } } }"""
QUEUE = """query($a: ID!, $n: Int!) { queue(accountId: $a, first: $n) { queue { accountId } slots { at targetIds free } } }"""
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


def _next_local(days: set[int], at: time, tz: ZoneInfo, count: int) -> list[datetime]:
    """The next ``count`` local ``at`` times on ``days`` after now, found the slow obvious way."""
    found, day, now = [], utcnow().astimezone(tz).date(), utcnow()
    while len(found) < count:
        when = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        if day.weekday() in days and when > now:
            found.append(when)
        day += timedelta(days=1)
    return found


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


async def _set(api, org, **input) -> dict:
    return (await api.graphql(SET_QUEUE, {"i": input}, key=org.secret))["data"]["setPostingQueue"]


async def test_add_to_queue_fills_each_accounts_next_free_slot_and_a_slot_change_moves_them(api):
    org = await setup_org(api)
    alice, bob = await sandbox_account(api, org.secret, "alice"), await sandbox_account(api, org.secret, "bob")
    made = await _set(api, org, timezone="Europe/Paris", slots=[{"dayOfWeek": "MONDAY", "time": "09:00"},
                                                                 {"dayOfWeek": "WEDNESDAY", "time": "09:00"}])
    assert made["userErrors"] == [] and made["moved"] == 0 and made["queue"]["accountId"] is None
    expected = _next_local({0, 2}, time(9), PARIS, 3)

    first = await new_post(api, org.secret, [alice, bob])
    second = await new_post(api, org.secret, [alice])
    added = [(await api.graphql(ADD, {"id": p}, key=org.secret))["data"]["addToQueue"] for p in (first, second)]
    assert [sorted(_at(s["at"]) for s in a["slots"]) for a in added] == [[expected[0], expected[0]], [expected[1]]]

    preview = (await api.graphql(QUEUE, {"a": alice, "n": 3}, key=org.secret))["data"]["queue"]
    assert [(_at(s["at"]), s["free"]) for s in preview["slots"]] == [(expected[0], 0), (expected[1], 0), (expected[2], 1)]
    assert preview["slots"][2]["targetIds"] == []
    async with api.runtime.database.read() as session:
        rows = {t.id: t for t in (await session.execute(select(Target))).scalars()}
    assert {rows[t].status for t in rows} == {"scheduled"} and all(rows[t].next_attempt_at == rows[t].publish_at for t in rows)

    # Alice gets her own daily 18:00 queue: her two targets move, in their order; Bob's stays.
    own = await _set(api, org, accountId=alice, timezone="Europe/Paris", slots=[{"dayOfWeek": d, "time": "18:00"} for d in
                     ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")])
    assert own["moved"] == 2
    daily = _next_local(set(range(7)), time(18), PARIS, 2)
    moved = (await api.graphql(QUEUE, {"a": alice, "n": 2}, key=org.secret))["data"]["queue"]
    assert moved["queue"]["accountId"] == alice
    assert [(_at(s["at"]), len(s["targetIds"])) for s in moved["slots"]] == [(daily[0], 1), (daily[1], 1)]
    assert moved["slots"][0]["targetIds"] != moved["slots"][1]["targetIds"]
    bob_queue = (await api.graphql(QUEUE, {"a": bob, "n": 1}, key=org.secret))["data"]["queue"]
    assert _at(bob_queue["slots"][0]["at"]) == expected[0] and len(bob_queue["slots"][0]["targetIds"]) == 1
    again = await _set(api, org, accountId=alice, timezone="Europe/Paris", slots=[{"dayOfWeek": d, "time": "18:00"} for d in
                       ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")])
    assert again["moved"] == 0
    async with api.runtime.database.read() as session:
        targets = (await session.execute(select(Target).where(Target.account_id == alice).order_by(Target.publish_at))).scalars().all()
    assert [(t.post_id, t.publish_at, t.next_attempt_at) for t in targets] == [(first, daily[0], daily[0]), (second, daily[1], daily[1])]


async def test_max_per_slot_lets_several_targets_share_a_slot(api):
    org = await setup_org(api)
    alice = await sandbox_account(api, org.secret, "alice")
    await _set(api, org, timezone="UTC", slots=[{"dayOfWeek": "FRIDAY", "time": "12:00"}], maxPerSlot=2)
    times = []
    for _ in range(3):
        added = (await api.graphql(ADD, {"id": await new_post(api, org.secret, [alice])}, key=org.secret))["data"]["addToQueue"]
        times.append(_at(added["slots"][0]["at"]))
    fridays = _next_local({4}, time(12), ZoneInfo("UTC"), 2)
    assert times == [fridays[0], fridays[0], fridays[1]]


async def test_queue_mistakes_are_user_errors_with_codes(api):
    org = await setup_org(api)
    alice = await sandbox_account(api, org.secret, "alice")
    post = await new_post(api, org.secret, [alice])
    assert (await api.graphql(ADD, {"id": post}, key=org.secret))["data"]["addToQueue"]["userErrors"] == [{"code": "NO_QUEUE"}]
    for input, code in (
        ({"timezone": "Mars/Olympus", "slots": []}, "INVALID_TIMEZONE"),
        ({"timezone": "UTC", "slots": [{"dayOfWeek": "MONDAY", "time": "25:00"}]}, "INVALID_SLOT"),
        ({"timezone": "UTC", "slots": [], "maxPerSlot": 0}, "INVALID_MAX_PER_SLOT"),
        ({"timezone": "UTC", "slots": [], "accountId": "acct_" + "x" * 24}, "ACCOUNT_NOT_FOUND"),
    ):
        assert [e["code"] for e in (await _set(api, org, **input))["userErrors"]] == [code], input
    await _set(api, org, timezone="UTC", slots=[{"dayOfWeek": "MONDAY", "time": "08:00"}])
    assert (await api.graphql(ADD, {"id": post}, key=org.secret))["data"]["addToQueue"]["userErrors"] == []
    assert (await api.graphql(ADD, {"id": post}, key=org.secret))["data"]["addToQueue"]["userErrors"] == [{"code": "POST_NOT_DRAFT"}]
    emptied = await _set(api, org, timezone="UTC", slots=[])
    assert [e["code"] for e in emptied["userErrors"]] == ["QUEUE_FULL"]  # what is queued must still fit


def test_slots_keep_local_time_across_dst_and_move_a_missing_time_forward():
    paris = ZoneInfo("Europe/Paris")
    # Paris springs forward on Sunday 2026-03-29 at 02:00: 09:00 stays 09:00 local, 02:30 becomes 03:30.
    found = list(instants([Slot(6, "02:30"), Slot(6, "09:00")], paris, datetime(2026, 3, 21, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)))
    assert [w.astimezone(paris).strftime("%m-%d %H:%M") for w in found] == ["03-22 02:30", "03-22 09:00", "03-29 03:30", "03-29 09:00"]
    assert found[3] - found[1] == timedelta(days=7, hours=-1)
    # New York falls back on Sunday 2026-11-01: 01:30 happens twice; the queue takes the first.
    new_york = ZoneInfo("America/New_York")
    [fall] = list(instants([Slot(6, "01:30")], new_york, datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)))
    assert fall == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT (UTC-4), not 01:30 EST
    assert list(instants([], paris, datetime(2026, 1, 1, tzinfo=UTC))) == []
    assert date(2026, 3, 29).weekday() == 6
