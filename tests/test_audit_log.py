"""The audit log (issue 17, point 5): every mutation is recorded, durably, and read back by the
organization and its parent."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLList, GraphQLNonNull, GraphQLScalarType
from sqlalchemy import select

from gateway.audit import log as audit
from gateway.core.clock import utcnow
from gateway.core.ids import new_id
from gateway.storage.models import AuditEntry
from tests.conftest import make_org_with_key
from tests.engine import sandbox_account

AUDIT_LOG = """query($filter: AuditLogFilter, $first: Int, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    nodes { id operation actorKeyId actorOrganizationId organizationId objectIds outcome errorCodes requestId createdAt }
    pageInfo { hasNextPage endCursor }
  }
}"""
CREATE_POST = """mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } userErrors { code } } }"""
CREATE_ORG = """mutation($name: String!) { createOrganization(input: {name: $name}) { organization { id } userErrors { code } } }"""
CREATE_KEY = """mutation($scopes: [String!]!) { createApiKey(input: {scopes: $scopes}) { apiKey { id } secret userErrors { code } } }"""


async def _entries(api, key: str, headers: dict | None = None, **variables: Any) -> list[dict]:
    body = await api.graphql(AUDIT_LOG, variables, key=key, headers=headers)
    assert "errors" not in body, body
    return body["data"]["auditLog"]["nodes"]


async def _stored(api) -> list[AuditEntry]:
    async with api.runtime.database.read() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.created_at))).scalars())


# -- every mutation ------------------------------------------------------------------------------

SCALAR_SAMPLES = {"ID": "post_" + "a" * 24, "String": "audit", "Int": 1, "Float": 1.0, "Boolean": False,
                  "DateTime": "2099-01-01T00:00:00Z", "JSON": {}, "Upload": None, "Int64": "1", "Count": 1}


def _sample(type_: Any, path: str, uploads: list[str]) -> Any:
    """A value of a GraphQL input type with every required field filled: enough to reach the resolver.

    An ``Upload`` is a file part of a multipart request: its variable path is noted in ``uploads``.
    """
    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type, path, uploads)
    if isinstance(type_, GraphQLList):
        return []
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        if type_.name == "Upload":
            uploads.append(path)
        return SCALAR_SAMPLES[type_.name]
    assert isinstance(type_, GraphQLInputObjectType)
    return {name: _sample(field.type, f"{path}.{name}", uploads)
            for name, field in type_.fields.items() if isinstance(field.type, GraphQLNonNull)}


async def _call(api, key: str, document: str, variables: dict, uploads: list[str], request_id: str) -> dict:
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": request_id}
    if not uploads:
        response = await api.http.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
    else:  # the GraphQL multipart request spec: operations, map, file parts
        response = await api.http.post(
            "/graphql",
            data={"operations": json.dumps({"query": document, "variables": variables}),
                  "map": json.dumps({str(i): [p] for i, p in enumerate(uploads)})},
            files={str(i): ("note.txt", b"not an image", "text/plain") for i in range(len(uploads))},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_mutation_of_the_schema_appears_in_the_audit_log(api, shared_schema):
    """Walks the built schema, so a mutation added later is covered (or this fails) without editing it."""
    org = await make_org_with_key(api.runtime)
    mutations = shared_schema._schema.mutation_type.fields
    for name, field in mutations.items():
        uploads: list[str] = []
        arguments = {a: _sample(arg.type, f"variables.{a}", uploads) for a, arg in field.args.items()
                     if isinstance(arg.type, GraphQLNonNull)}
        declared = ", ".join(f"${a}: {field.args[a].type}" for a in arguments)
        passed = ", ".join(f"{a}: ${a}" for a in arguments)
        document = f"mutation{f'({declared})' if declared else ''} {{ {name}{f'({passed})' if passed else ''} {{ __typename }} }}"
        body = await _call(api, org.secret, document, arguments, uploads, f"walk-{name}")
        assert body.get("data") is not None, (name, body)
    entries = {entry["operation"]: entry for entry in await _entries(api, org.secret, first=100)}
    assert set(entries) == set(mutations), "mutations missing from the audit log: " + ", ".join(sorted(set(mutations) - set(entries)))
    for name, entry in entries.items():
        assert entry["actorKeyId"] == org.api_key_id and entry["organizationId"] == org.organization_id, name
        assert entry["requestId"] == f"walk-{name}", name
        assert entry["outcome"] in ("OK", "USER_ERRORS", "ERROR"), name
        assert (entry["outcome"] == "OK") == (entry["errorCodes"] == []), name


# -- what an entry says ----------------------------------------------------------------------------


async def test_an_entry_names_actor_objects_outcome_and_request(api):
    org = await make_org_with_key(api.runtime)
    account_id = await sandbox_account(api, org.secret)
    made = await api.graphql(CREATE_POST, {"input": {"text": "hello", "targets": [{"accountId": account_id}]}},
                             key=org.secret, headers={"X-Request-Id": "req-create"})
    post_id = made["data"]["createPost"]["post"]["id"]
    refused = await api.graphql(CREATE_KEY, {"scopes": ["nonsense:scope"]}, key=org.secret, headers={"X-Request-Id": "req-key"})
    assert refused["data"]["createApiKey"]["userErrors"][0]["code"] == "INVALID_SCOPE"
    missing = "post_" + "z" * 24
    await api.graphql("mutation($id: ID!) { deletePost(input: {id: $id}) { userErrors { code } } }", {"id": missing}, key=org.secret)

    entries = await _entries(api, org.secret)
    by_operation = {e["operation"]: e for e in entries}
    assert [e["operation"] for e in entries] == ["deletePost", "createApiKey", "createPost", "connectAccount"]  # newest first
    assert by_operation["connectAccount"]["objectIds"] == [account_id]  # the object the payload answered
    create = by_operation["createPost"]
    assert create["outcome"] == "OK" and create["objectIds"] == [account_id, post_id] and create["requestId"] == "req-create"
    assert create["actorKeyId"] == org.api_key_id and create["actorOrganizationId"] == org.organization_id
    assert by_operation["createApiKey"]["outcome"] == "USER_ERRORS"
    assert by_operation["createApiKey"]["errorCodes"] == ["INVALID_SCOPE"]
    assert by_operation["deletePost"]["objectIds"] == [missing]
    assert by_operation["deletePost"]["errorCodes"] == ["POST_NOT_FOUND"]


async def test_a_top_level_error_is_recorded_as_error_with_its_code(api):
    reader = await make_org_with_key(api.runtime, scopes=["posts:read", "audit:read"])
    body = await api.graphql(CREATE_POST, {"input": {"text": "x", "targets": []}}, key=reader.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    [entry] = await _entries(api, reader.secret)
    assert (entry["operation"], entry["outcome"], entry["errorCodes"]) == ("createPost", "ERROR", ["FORBIDDEN"])


async def test_a_secret_never_lands_in_the_audit_log(api):
    org = await make_org_with_key(api.runtime)
    made = await api.graphql(CREATE_KEY, {"scopes": ["posts:read"]}, key=org.secret)
    secret = made["data"]["createApiKey"]["secret"]
    [stored] = await _stored(api)
    assert secret not in str({name: getattr(stored, name) for name in AuditEntry.__mapper__.column_attrs.keys()})
    assert stored.object_ids == [made["data"]["createApiKey"]["apiKey"]["id"]]


# -- durability ----------------------------------------------------------------------------------


async def test_the_entry_commits_with_the_change_even_when_the_final_write_fails(api, monkeypatch):
    """The provisional entry is written in the mutation's own transaction: a change never commits without it."""
    org = await make_org_with_key(api.runtime)

    async def broken(database, draft):
        raise RuntimeError("the database went away after the mutation committed")

    monkeypatch.setattr(audit, "record", broken)
    made = await api.graphql(CREATE_ORG, {"name": "Child"}, key=org.secret, headers={"X-Request-Id": "req-durable"})
    assert made["data"]["createOrganization"]["userErrors"] == []  # the caller hears the truth: it worked
    [stored] = await _stored(api)
    assert (stored.action, stored.outcome, stored.request_id) == ("createOrganization", "ok", "req-durable")
    assert stored.actor_key_id == org.api_key_id


async def test_a_rolled_back_mutation_leaves_no_provisional_ok(api):
    """User errors roll the transaction back, provisional entry included; the final entry says what happened."""
    org = await make_org_with_key(api.runtime)
    await api.graphql(CREATE_ORG, {"name": ""}, key=org.secret)
    [stored] = await _stored(api)
    assert (stored.outcome, stored.error_codes) == ("user_errors", ["NAME_REQUIRED"])


# -- who sees what -------------------------------------------------------------------------------


async def test_a_parent_sees_its_childrens_entries_and_a_child_not_its_parents(api):
    parent = await make_org_with_key(api.runtime, name="Parent", scopes=["*"])
    child_id = (await api.graphql(CREATE_ORG, {"name": "Child"}, key=parent.secret))["data"]["createOrganization"]["organization"]["id"]
    child_key = (await api.graphql(CREATE_KEY, {"scopes": ["posts:write", "audit:read"]}, key=parent.secret,
                                   headers={"X-Socialgate-Org": child_id}))["data"]["createApiKey"]
    await api.graphql(CREATE_POST, {"input": {"text": "child's", "targets": []}}, key=child_key["secret"])
    stranger = await make_org_with_key(api.runtime, name="Stranger")
    await api.graphql(CREATE_POST, {"input": {"text": "stranger's", "targets": []}}, key=stranger.secret)

    seen_by_parent = await _entries(api, parent.secret)
    assert [(e["operation"], e["organizationId"]) for e in seen_by_parent] == [
        ("createPost", child_id), ("createApiKey", child_id), ("createOrganization", parent.organization_id),
    ]
    acting = seen_by_parent[1]
    assert acting["actorKeyId"] == parent.api_key_id and acting["actorOrganizationId"] == parent.organization_id
    seen_by_child = await _entries(api, child_key["secret"])
    assert [e["operation"] for e in seen_by_child] == ["createPost", "createApiKey"]
    assert [e["operation"] for e in await _entries(api, stranger.secret)] == ["createPost"]


async def test_the_audit_log_needs_its_scope(api):
    org = await make_org_with_key(api.runtime, scopes=["posts:*"])
    body = await api.graphql(AUDIT_LOG, {}, key=org.secret)
    assert body["data"]["auditLog"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# -- filters and pages ---------------------------------------------------------------------------


async def _seed(api, organization_id: str, rows: list[tuple[str, str, int]]) -> None:
    """Entries (operation, actor key, minutes ago) written straight to the table."""
    now = utcnow()
    async with api.runtime.database.write() as session:
        for operation, actor, minutes in rows:
            session.add(AuditEntry(id=new_id("aud"), organization_id=organization_id, actor_key_id=actor, action=operation,
                                   outcome="ok", object_ids=[], error_codes=[], details={}, created_at=now - timedelta(minutes=minutes)))


async def test_filters_by_actor_operation_and_time_and_pages(api):
    org = await make_org_with_key(api.runtime, scopes=["audit:read"])
    other_key = new_id("key")
    await _seed(api, org.organization_id, [("createPost", org.api_key_id, 50), ("deletePost", other_key, 40),
                                           ("createPost", other_key, 30), ("createPost", org.api_key_id, 20)])
    by_actor = await _entries(api, org.secret, filter={"actorKeyId": other_key})
    assert [e["operation"] for e in by_actor] == ["createPost", "deletePost"]
    by_operation = await _entries(api, org.secret, filter={"operation": "createPost", "actorKeyId": org.api_key_id})
    assert len(by_operation) == 2
    now = utcnow()
    window = {"from": (now - timedelta(minutes=45)).isoformat(), "to": (now - timedelta(minutes=25)).isoformat()}
    assert [e["actorKeyId"] for e in await _entries(api, org.secret, filter=window)] == [other_key, other_key]

    first = (await api.graphql(AUDIT_LOG, {"first": 3}, key=org.secret))["data"]["auditLog"]
    assert len(first["nodes"]) == 3 and first["pageInfo"]["hasNextPage"]
    rest = await _entries(api, org.secret, first=3, after=first["pageInfo"]["endCursor"])
    assert len(rest) == 1 and rest[0]["id"] not in {e["id"] for e in first["nodes"]}


@pytest.mark.parametrize("window", [{"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, {"from": "2026-01-01T00:00:00"}])
async def test_a_bad_time_window_is_bad_input(api, window):
    org = await make_org_with_key(api.runtime, scopes=["audit:read"])
    body = await api.graphql(AUDIT_LOG, {"filter": window}, key=org.secret)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# -- retention -----------------------------------------------------------------------------------


async def test_entries_past_the_retention_are_pruned_by_the_chore(api, monkeypatch):
    org = await make_org_with_key(api.runtime)
    day = 24 * 60
    await _seed(api, org.organization_id, [("old", org.api_key_id, 40 * day), ("older", org.api_key_id, 400 * day),
                                           ("recent", org.api_key_id, 29 * day)])
    monkeypatch.setattr(audit, "PRUNE_BATCH", 1)  # several batches, each its own transaction
    chore = audit.AuditRetention(api.runtime.database, retention_days=30)
    assert await chore.prune_once() == 2
    assert [e.action for e in await _stored(api)] == ["recent"]


def test_the_retention_is_a_setting(settings):
    from gateway.settings import SettingsError, load_settings

    assert settings.audit_retention_days == 365
    assert load_settings(audit_retention_days=7).audit_retention_days == 7
    with pytest.raises(SettingsError, match="SOCIALGATE_AUDIT_RETENTION_DAYS"):
        load_settings(audit_retention_days=0)


async def test_the_runtime_runs_the_pruning_chore(settings):
    """The chore the runtime starts prunes on its own; the test waits for the rows to go, not for a time."""
    from gateway.runtime import Runtime
    from tests.waiting import until

    runtime = Runtime(settings.model_copy(update={"audit_retention_days": 1}))
    runtime.audit_retention = audit.AuditRetention(runtime.database, retention_days=1, interval=0.01)
    await runtime.start()
    try:
        org = await make_org_with_key(runtime)
        async with runtime.database.write() as session:
            session.add(AuditEntry(id=new_id("aud"), organization_id=org.organization_id, action="old", outcome="ok",
                                   object_ids=[], error_codes=[], details={}, created_at=utcnow() - timedelta(days=2)))

        async def pruned() -> bool:
            async with runtime.database.read() as session:
                return (await session.execute(select(AuditEntry.id))).first() is None

        await until(pruned)
    finally:
        await runtime.stop()


async def test_work_a_mutation_leaves_running_adds_no_statement_once_its_entry_is_final(api):
    """Tasks started by a mutation inherit its context; after the final entry their writes carry nothing more."""
    from sqlalchemy import event

    from gateway.storage.staging import every_write_in_context

    org = await make_org_with_key(api.runtime)
    draft = audit.Draft(organization_id=org.organization_id, actor_key_id=org.api_key_id,
                        actor_organization_id=org.organization_id, operation="later", request_id=None)
    inserts: list[str] = []

    def seen(conn, cursor, statement, *args):
        if "INSERT INTO audit_entries" in statement:
            inserts.append(statement)

    async def guest(session):
        await audit.stage_provisional(session, draft)

    event.listen(api.runtime.database.write_engine.sync_engine, "before_cursor_execute", seen)
    try:
        with every_write_in_context(guest):
            async with api.runtime.database.write():
                pass
            draft.final = True
            async with api.runtime.database.write():
                pass
    finally:
        event.remove(api.runtime.database.write_engine.sync_engine, "before_cursor_execute", seen)
    assert len(inserts) == 1


async def test_free_form_json_arguments_are_never_searched_for_ids(api):
    """Credentials are JSON: a value that merely looks like an id must not be copied into the log."""
    org = await make_org_with_key(api.runtime)
    looks_like_an_id = "key_" + "S3cr3t" * 4
    account_id = await sandbox_account(api, org.secret, looks_like_an_id)
    [stored] = await _stored(api)
    assert stored.object_ids == [account_id]


def _final_drafts(org, n: int) -> list[audit.Draft]:
    from gateway.auth import Principal

    principal = Principal(api_key_id=org.api_key_id, organization_id=org.organization_id, scopes=("*",))
    drafts = [audit.Draft.of(principal, f"op{i}", f"req_{i}") for i in range(n)]
    for draft in drafts:
        draft.add_ids([f"post_{draft.operation}"])
    return drafts


async def _stored_entries(api, ids) -> dict[str, Any]:
    async with api.runtime.database.read() as session:
        rows = (await session.execute(select(AuditEntry).where(AuditEntry.id.in_(ids)))).scalars()
        return {row.id: row for row in rows}


async def test_final_entries_that_come_together_are_written_in_one_transaction(api, org):
    """A group commit: five mutations ending at once write their final entries in one write
    transaction, and each is answered only once its own entry is committed."""
    import asyncio

    from sqlalchemy import event

    drafts = _final_drafts(org, 5)
    upserts: list[int] = []

    def seen(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if statement.startswith("INSERT INTO audit_entries") and "DO UPDATE" in statement:
            upserts.append(len(parameters) if executemany else 1)

    engine = api.runtime.database.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await asyncio.gather(*(audit.record(api.runtime.database, draft) for draft in drafts))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert upserts == [5]  # one statement, one transaction, five rows
    stored = await _stored_entries(api, [d.id for d in drafts])
    assert {row.action for row in stored.values()} == {f"op{i}" for i in range(5)}
    assert all(row.object_ids == [f"post_{row.action}"] and row.outcome == "ok" for row in stored.values())


async def test_a_caller_gone_does_not_keep_the_others_final_entries_unwritten(api, org):
    import asyncio

    first, second = _final_drafts(org, 2)
    gone = asyncio.create_task(audit.record(api.runtime.database, first))
    staying = asyncio.create_task(audit.record(api.runtime.database, second))
    await asyncio.sleep(0)  # both queued, the batch's writer started
    gone.cancel()
    await staying
    with pytest.raises(asyncio.CancelledError):
        await gone
    stored = await _stored_entries(api, [first.id, second.id])
    assert set(stored) == {first.id, second.id}  # the batch was written for both


# -- one write per successful mutation -----------------------------------------------------------


def _upserts_seen(api) -> tuple[list[str], Any]:
    from sqlalchemy import event

    upserts: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("INSERT INTO audit_entries") and "DO UPDATE" in statement:
            upserts.append(statement)

    engine = api.runtime.database.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    return upserts, lambda: event.remove(engine, "before_cursor_execute", seen)


async def test_an_entry_committed_as_it_would_end_is_not_written_again(api, org):
    """A transaction that names what the mutation answers (``name_answered``) commits the entry
    final already: ``record`` finds nothing to change and writes nothing."""
    from gateway.storage import every_write_in_context, name_answered

    [draft] = _final_drafts(org, 1)

    async def guest(session):
        await audit.stage_provisional(session, draft)

    upserts, stop = _upserts_seen(api)
    try:
        with every_write_in_context(guest):
            async with api.runtime.database.write() as session:
                name_answered(session, "job_answered")
        draft.add_ids(["job_answered"])  # what the payload answers
        await audit.record(api.runtime.database, draft)
    finally:
        stop()
    assert upserts == []
    stored = (await _stored_entries(api, [draft.id]))[draft.id]
    assert (stored.object_ids, stored.outcome) == ([f"post_{draft.operation}", "job_answered"], "ok")


async def test_an_entry_whose_answer_differs_or_whose_transaction_rolled_back_is_written_final(api, org):
    """The skipped write needs the committed row to be the final one: a rolled-back transaction's
    row never stood, and an answer that differs (user errors) is written over it."""
    from gateway.storage import every_write_in_context, name_answered

    rolled_back, differs = _final_drafts(org, 2)

    async def guest_of(draft):
        async def guest(session):
            await audit.stage_provisional(session, draft)
        return guest

    upserts, stop = _upserts_seen(api)
    try:
        with every_write_in_context(await guest_of(rolled_back)):
            with pytest.raises(RuntimeError):
                async with api.runtime.database.write() as session:
                    name_answered(session, "post_gone")
                    raise RuntimeError("rolled back")
        rolled_back.outcome, rolled_back.error_codes = "error", ["INTERNAL"]
        await audit.record(api.runtime.database, rolled_back)
        with every_write_in_context(await guest_of(differs)):
            async with api.runtime.database.write() as session:
                name_answered(session, "post_named")
        differs.outcome, differs.error_codes = "user_errors", ["NOPE"]
        await audit.record(api.runtime.database, differs)
    finally:
        stop()
    assert len(upserts) == 2
    stored = await _stored_entries(api, [rolled_back.id, differs.id])
    assert (stored[rolled_back.id].outcome, stored[rolled_back.id].object_ids) == ("error", [f"post_{rolled_back.operation}"])
    assert (stored[differs.id].outcome, stored[differs.id].error_codes) == ("user_errors", ["NOPE"])
