"""The engine's plain rows: read, changed by the same rules as ORM objects, written back only when changed."""

import pytest
from sqlalchemy import event as sql_event
from sqlalchemy import select

from gateway.core.clock import utcnow
from gateway.engine.jobs import refresh_job
from gateway.engine.rows import lock_job_rows, save_jobs, save_targets, targets_of_posts
from gateway.storage.models import Job, Target
from tests.engine import engine_app, new_post, publish, sandbox_account, setup_org


@pytest.fixture
async def api(tmp_path):
    async with engine_app(tmp_path) as api:
        yield api


def counting_updates():
    updates: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    return updates, seen


async def test_only_rows_that_changed_are_written_and_each_table_in_one_statement(api):
    org = await setup_org(api)
    accounts = [await sandbox_account(api, org.secret, handle) for handle in ("one", "two", "three")]
    post_id = await new_post(api, org.secret, accounts)
    job_id = (await publish(api, org.secret, post_id))["job"]["id"]
    updates, seen = counting_updates()
    engine = api.runtime.database.write_engine.sync_engine
    sql_event.listen(engine, "before_cursor_execute", seen)
    try:
        async with api.runtime.database.write() as session:
            [first, second, third] = (await targets_of_posts(session, [post_id]))[post_id]
            jobs = await lock_job_rows(session, [job_id])
            assert await save_targets(session, [first, second, third], utcnow()) == 0  # nothing changed, nothing sent
            first.status, first.platform_post_id = "published", "sb_1"
            second.status = "failed"
            events = []
            await refresh_job(session, jobs[job_id], events, [first, second, third])
            assert await save_targets(session, [first, second, third], utcnow()) == 2
            assert await save_jobs(session, jobs.values(), utcnow()) == 1
            assert await save_targets(session, [first, second, third], utcnow()) == 0  # saved: clean again
    finally:
        sql_event.remove(engine, "before_cursor_execute", seen)
    assert len(updates) == 2  # one executemany for the two targets, one for the job
    async with api.runtime.database.read() as session:
        stored = {t.id: t for t in (await session.execute(select(Target).where(Target.post_id == post_id))).scalars()}
        job = await session.get(Job, job_id)
    assert (stored[first.id].status, stored[first.id].platform_post_id) == ("published", "sb_1")
    assert stored[second.id].status == "failed" and stored[third.id].status == "scheduled"
    assert stored[first.id].updated_at > stored[third.id].updated_at
    assert (job.status, job.progress_done, job.progress_total) == ("running", 2, 3)
