"""createPost's write path (issue 21, point 6): the post and its targets go in as Core INSERTs,
never through the ORM's unit of work, and come back the same as before."""

from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from gateway.storage import Post, Target
from tests.engine import quiet_background
from tests.test_accounts_api import connect

CREATE = """mutation($i: CreatePostInput!) { createPost(input: $i) {
  post { id status text targets { provider status account { handle } } } userErrors { code } } }"""


async def test_create_post_flushes_no_post_or_target(api, org):
    accounts = [(await connect(api, org.secret, credentials={"handle": h}))["account"]["id"] for h in ("ann", "bob")]
    flushed: list[type] = []

    def before_flush(session, _context, _instances) -> None:
        flushed.extend(type(obj) for obj in session.new)

    event.listen(Session, "before_flush", before_flush)
    try:
        body = await api.graphql(CREATE, {"i": {"text": "hi", "targets": [{"accountId": a} for a in accounts]}}, key=org.secret)
    finally:
        event.remove(Session, "before_flush", before_flush)
    assert body["data"]["createPost"]["userErrors"] == []
    post = body["data"]["createPost"]["post"]
    assert (post["status"], post["text"]) == ("DRAFT", "hi")
    assert sorted((t["provider"], t["status"], t["account"]["handle"]) for t in post["targets"]) == [
        ("sandbox", "DRAFT", "ann"), ("sandbox", "DRAFT", "bob"),
    ]
    assert Post not in flushed and Target not in flushed


async def test_argument_names_are_converted_once_not_per_request(api, org, monkeypatch):
    """Strawberry converts every argument's and input field's name on every request; the schema's
    name converter remembers each conversion, so a repeated mutation converts none."""
    import strawberry.schema.name_converter as names

    accounts = [(await connect(api, org.secret, credentials={"handle": "ann"}))["account"]["id"]]
    variables = {"i": {"text": "hi", "targets": [{"accountId": a} for a in accounts], "mediaIds": [], "thread": []}}
    assert (await api.graphql(CREATE, variables, key=org.secret))["data"]["createPost"]["userErrors"] == []
    converted: list[str] = []
    original = names.to_camel_case
    monkeypatch.setattr(names, "to_camel_case", lambda name: converted.append(name) or original(name))
    body = await api.graphql(CREATE, variables, key=org.secret)
    assert body["data"]["createPost"]["userErrors"] == []
    assert converted == []


PUBLISH = "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code } } }"
CREATE_SLIM = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id text status } userErrors { code } } }"


def _statements_of(engine) -> tuple[list[tuple[str, Any]], Any]:
    """Each transaction begun and statement sent on ``engine``, in order."""
    seen: list[tuple[str, Any]] = []

    def begin(_connection) -> None:
        seen.append(("BEGIN", None))

    def statement(_conn, _cursor, sql, *_args) -> None:
        seen.append((sql, None))

    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", statement)

    def stop() -> None:
        event.remove(engine, "begin", begin)
        event.remove(engine, "before_cursor_execute", statement)

    return seen, stop


async def test_create_and_publish_write_once_each_and_read_nothing_back(api, org):
    """Each mutation is one write transaction, its audit entry final inside it (no second write),
    and nothing read back after the commit: createPost answers from the rows it wrote. The checks
    read accounts without their credentials, and a new job's events are numbered without max(seq)."""
    from gateway.storage import AuditEntry

    accounts = [(await connect(api, org.secret, credentials={"handle": h}))["account"]["id"] for h in ("ann", "bob")]
    await quiet_background(api.runtime)
    database = api.runtime.database
    reads, stop_reads = _statements_of(database.engine.sync_engine)
    writes, stop_writes = _statements_of(database.write_engine.sync_engine)
    try:
        body = await api.graphql(CREATE_SLIM, {"i": {"text": "hi", "targets": [{"accountId": a} for a in accounts]}}, key=org.secret)
        post = body["data"]["createPost"]["post"]
        created_reads, created_writes = list(reads), list(writes)
        reads.clear(), writes.clear()
        published = (await api.graphql(PUBLISH, {"id": post["id"]}, key=org.secret))["data"]["publishPost"]
    finally:
        stop_reads(), stop_writes()
    assert body["data"]["createPost"]["userErrors"] == [] and published["userErrors"] == []
    assert (post["text"], post["status"]) == ("hi", "DRAFT")
    for mutation_reads, mutation_writes in ((created_reads, created_writes), (reads, writes)):
        assert [sql for sql, _ in mutation_reads if sql != "BEGIN"] == [next(sql for sql, _ in mutation_reads if "FROM api_keys" in sql)]
        assert [sql for sql, _ in mutation_writes].count("BEGIN") == 1
        assert not any("DO UPDATE" in sql for sql, _ in mutation_writes)
    assert not any("credentials" in sql for sql, _ in created_writes + writes if "FROM accounts" in sql)
    assert not any("max(job_events.seq)" in sql for sql, _ in writes)
    async with database.read() as session:
        entries = {row.action: row for row in (await session.execute(select(AuditEntry))).scalars()}
    assert entries["createPost"].object_ids == [*accounts, post["id"]]
    assert entries["publishPost"].object_ids == [post["id"], published["job"]["id"]]
    assert entries["createPost"].outcome == entries["publishPost"].outcome == "ok"


async def test_create_post_answers_what_a_fresh_read_finds(api, org, monkeypatch):
    """The payload built from the rows written says what the stored post says, field by field,
    and carries every column of a post (a column added later is answered too)."""
    import schema.posts

    answered_rows: list[Any] = []
    from_row = schema.posts.PostType.from_row.__func__
    monkeypatch.setattr(schema.posts.PostType, "from_row", classmethod(lambda cls, row: answered_rows.append(row) or from_row(cls, row)))
    fields = "id text thread overrides { provider text } approvalStatus campaignId createdAt updatedAt status"
    account = (await connect(api, org.secret, credentials={"handle": "ann"}))["account"]["id"]
    variables = {"i": {"text": "hé", "thread": ["two"], "overrides": [{"provider": "sandbox", "text": "sb"}],
                       "targets": [{"accountId": account}]}}
    body = await api.graphql(f"mutation($i: CreatePostInput!) {{ createPost(input: $i) {{ post {{ {fields} }} userErrors {{ code field }} }} }}", variables, key=org.secret)
    assert body["data"]["createPost"]["userErrors"] == [], body
    answered = body["data"]["createPost"]["post"]
    read = (await api.graphql(f'{{ post(id: "{answered["id"]}") {{ {fields} }} }}', key=org.secret))["data"]["post"]
    assert answered == read
    assert set(Post.__table__.c.keys()) <= set(vars(answered_rows[0]))
    empty = await api.graphql(f"mutation($i: CreatePostInput!) {{ createPost(input: $i) {{ post {{ {fields} }} }} }}", {"i": {"text": "none", "targets": []}}, key=org.secret)
    if empty["data"]["createPost"]["post"] is not None:  # a post with no target, if the checks let it be
        again = (await api.graphql(f'{{ post(id: "{empty["data"]["createPost"]["post"]["id"]}") {{ {fields} }} }}', key=org.secret))["data"]["post"]
        assert empty["data"]["createPost"]["post"] == again


async def test_publish_post_queues_a_draft_in_core_as_the_orm_path_did(api, org):
    """publishPost on a draft: no Job or Target goes through the ORM's unit of work, and the job,
    its numbered events, the targets and the post's status come out as the ORM path left them;
    a repeat answers the same job (the ORM path, for a post already queued)."""
    from gateway.storage import Job, JobEvent, Target

    accounts = [(await connect(api, org.secret, credentials={"handle": h}))["account"]["id"] for h in ("ann", "bob")]
    await quiet_background(api.runtime)
    body = await api.graphql(CREATE_SLIM, {"i": {"text": "hi", "targets": [{"accountId": a} for a in accounts]}}, key=org.secret)
    post_id = body["data"]["createPost"]["post"]["id"]
    flushed: list[type] = []

    def before_flush(session, _context, _instances) -> None:
        flushed.extend(type(obj) for obj in (*session.new, *session.dirty))

    event.listen(Session, "before_flush", before_flush)
    try:
        published = (await api.graphql(PUBLISH, {"id": post_id}, key=org.secret))["data"]["publishPost"]
    finally:
        event.remove(Session, "before_flush", before_flush)
    assert published["userErrors"] == []
    assert Job not in flushed and Target not in flushed
    job_id = published["job"]["id"]
    async with api.runtime.database.read() as session:
        job = await session.get(Job, job_id)
        targets = (await session.execute(select(Target).where(Target.post_id == post_id).order_by(Target.created_at, Target.id))).scalars().all()
        events = (await session.execute(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))).scalars().all()
        post = await session.get(Post, post_id)
    assert (job.kind, job.status, job.subject_id, job.progress_done, job.progress_total) == ("publish", "queued", post_id, 0, 2)
    assert {(t.status, t.job_id, t.attempt_count, t.lease_owner) for t in targets} == {("scheduled", job_id, 0, None)}
    assert all(t.publish_at == t.next_attempt_at and t.publish_at is not None for t in targets)
    assert [(e.seq, e.kind) for e in events] == [(1, "job.queued"), (2, "post.status_changed")]
    assert events[0].payload["targetIds"] == [t.id for t in targets]
    assert post.status == "scheduled"
    again = (await api.graphql(PUBLISH, {"id": post_id}, key=org.secret))["data"]["publishPost"]
    assert again == published


async def test_publish_post_checks_the_accounts_it_reads_with_the_post(api, org):
    """The accounts come with the post and its targets (one statement on SQLite); a target whose
    account was disconnected since the draft was written still stops the publish, nothing queued."""
    from sqlalchemy import update

    from gateway.storage import Account, Job, Target

    accounts = [(await connect(api, org.secret, credentials={"handle": h}))["account"]["id"] for h in ("ann", "bob")]
    await quiet_background(api.runtime)
    body = await api.graphql(CREATE_SLIM, {"i": {"text": "hi", "targets": [{"accountId": a} for a in accounts]}}, key=org.secret)
    post_id = body["data"]["createPost"]["post"]["id"]
    async with api.runtime.database.write() as session:
        await session.execute(update(Account).where(Account.id == accounts[1]).values(status="disconnected"))
    refused = (await api.graphql(
        "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code field } } }", {"id": post_id}, key=org.secret
    ))["data"]["publishPost"]
    async with api.runtime.database.read() as session:
        order = list((await session.execute(select(Target.account_id).where(Target.post_id == post_id).order_by(Target.created_at, Target.id))).scalars())
    where = ["targets", str(order.index(accounts[1])), "accountId"]  # targets in creation order, as the post's input lists them
    assert refused == {"job": None, "userErrors": [{"code": "ACCOUNT_DISCONNECTED", "field": where}]}
    async with api.runtime.database.read() as session:
        assert set((await session.execute(select(Target.status).where(Target.post_id == post_id))).scalars()) == {"draft"}
        assert (await session.execute(select(Job.id).where(Job.subject_id == post_id))).first() is None


@pytest.mark.parametrize("thread", ["idle", "busy"])
async def test_create_and_publish_make_no_trip_to_sqlites_thread_or_two_each_when_it_is_busy(api, org, trips, thread, monkeypatch):
    """Every trip to aiosqlite's thread costs the event loop a hand-off (issue 21). With the write
    connection's thread idle, createPost and publishPost make none: the BEGIN IMMEDIATE, the reads,
    the writes and the COMMIT all go from the loop's thread, where nothing waits
    (``storage.sqlite_inline``). With it busy, every statement goes there, one trip each: the key,
    the transaction's first statement with its BEGIN IMMEDIATE, createPost's read of the
    organization's settings, then the writes with the COMMIT. They made 32 before: a BEGIN and a
    rollback around every read, a second transaction for each audit entry, the post read back, the
    ORM's flushes."""
    accounts = [(await connect(api, org.secret, credentials={"handle": h}))["account"]["id"] for h in ("ann", "bob")]
    await quiet_background(api.runtime)
    variables = {"i": {"text": "hi", "targets": [{"accountId": a} for a in accounts]}}
    warm = (await api.graphql(CREATE_SLIM, variables, key=org.secret))["data"]["createPost"]["post"]["id"]
    assert (await api.graphql(PUBLISH, {"id": warm}, key=org.secret))["data"]["publishPost"]["userErrors"] == []
    if thread == "busy":
        from gateway.storage.sqlite_driver import OneTripConnection

        monkeypatch.setattr(OneTripConnection, "thread_idle", lambda self: False)
    trips.clear()
    post_id = (await api.graphql(CREATE_SLIM, variables, key=org.secret))["data"]["createPost"]["post"]["id"]
    created, trips[:] = list(trips), []
    assert (await api.graphql(PUBLISH, {"id": post_id}, key=org.secret))["data"]["publishPost"]["userErrors"] == []
    if thread == "idle":
        assert created == trips == []
    else:  # the key, the first statement with its BEGIN IMMEDIATE, (the settings,) the writes with the COMMIT
        assert created == ["_run", "_run", "_run", "_commit"]
        assert trips == ["_run", "_run", "_commit"]
