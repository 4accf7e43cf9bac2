import asyncio

import pytest
from sqlalchemy import event, func, select, update

from gateway.storage.models import MediaAsset, Post, Target
from tests.conftest import make_org_with_key
from tests.strict_provider import GOOD_TOKEN, install
from tests.test_accounts_api import connect

CREATE = """mutation($input: CreatePostInput!) {
  createPost(input: $input) {
    post { id text status thread overrides { provider text } targets { id provider status text settings account { id handle } } }
    userErrors { field code message }
  }
}"""
VALIDATE = """query($input: PostContentInput!) {
  validatePost(input: $input) { valid userErrors { field code message }
    targets { index provider textLength textLimit textUnit issues { code } } }
}"""


async def _count(api, model) -> int:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar()


@pytest.fixture
async def accounts(api, org):
    install(api.runtime)
    sandbox = (await connect(api, org.secret, credentials={"handle": "sandy"}))["account"]["id"]
    strict = (await connect(api, org.secret, "strict", {"token": GOOD_TOKEN}))["account"]["id"]
    return {"sandbox": sandbox, "strict": strict}


async def _image(api, org, size=500, organization_id=None) -> str:
    """A media row as uploadMedia would leave it (the upload path is tested in test_media)."""
    from gateway.core.ids import new_id

    async with api.runtime.database.write() as session:
        asset = MediaAsset(
            id=new_id("med"), organization_id=organization_id or org.organization_id, kind="image", mime_type="image/png",
            filename="a.png", size_bytes=size, sha256="0" * 64, storage_path="x", access_token_hash="0" * 64,
        )
        session.add(asset)
    return asset.id


async def test_create_post_for_two_providers(api, org, accounts):
    body = await api.graphql(
        CREATE,
        {"input": {
            "text": "Hello from socialgate, a longer text",
            "overrides": [{"provider": "strict", "text": "Hi 👋🏽"}],
            "targets": [{"accountId": accounts["sandbox"]}, {"accountId": accounts["strict"], "settings": {"board": "news"}}],
        }},
        key=org.secret,
    )
    payload = body["data"]["createPost"]
    assert payload["userErrors"] == []
    post = payload["post"]
    assert post["status"] == "DRAFT"
    by_provider = {t["provider"]: t for t in post["targets"]}
    assert by_provider["strict"]["text"] == "Hi 👋🏽" and by_provider["strict"]["settings"] == {"board": "news"}
    assert by_provider["sandbox"]["text"] == "Hello from socialgate, a longer text"
    assert by_provider["sandbox"]["account"]["handle"] == "sandy"
    assert all(t["status"] == "DRAFT" for t in post["targets"])


async def test_validate_reports_every_problem_in_the_providers_unit_and_writes_nothing(api, org, accounts):
    big = await _image(api, org, size=5_000)
    other = await _image(api, org)
    variables = {"input": {
        "text": "👩‍👩‍👧‍👦 family photo!!",  # 1 ZWJ grapheme + 15 = 16 graphemes
        "mediaIds": [big, other, "med_" + "x" * 24],
        "thread": ["second part"],
        "targets": [{"accountId": accounts["strict"], "settings": {"board": "sports", "color": "red"}}, {"accountId": accounts["sandbox"]}],
    }}
    body = await api.graphql(VALIDATE, variables, key=org.secret)
    result = body["data"]["validatePost"]
    assert result["valid"] is False
    strict = result["targets"][0]
    assert (strict["provider"], strict["textLength"], strict["textLimit"], strict["textUnit"]) == ("strict", 16, 10, "graphemes")
    codes = {issue["code"] for issue in strict["issues"]}
    assert {"TEXT_TOO_LONG", "TOO_MANY_MEDIA", "MEDIA_TOO_LARGE", "THREADS_NOT_SUPPORTED", "SETTING_INVALID", "UNKNOWN_SETTING"} <= codes
    text_error = next(e for e in result["userErrors"] if e["code"] == "TEXT_TOO_LONG")
    assert text_error["field"] == ["targets", "0", "text"]
    assert "16" in text_error["message"] and "10" in text_error["message"] and "grapheme" in text_error["message"]
    assert result["targets"][1]["issues"] == []  # the sandbox takes all of it
    assert {"code": "MEDIA_NOT_FOUND", "field": ["mediaIds", "2"]} in [{"code": e["code"], "field": e["field"]} for e in result["userErrors"]]
    assert await _count(api, Post) == 0
    created = await api.graphql(CREATE, variables, key=org.secret)
    assert created["data"]["createPost"]["post"] is None
    assert len(created["data"]["createPost"]["userErrors"]) == len(result["userErrors"])
    assert await _count(api, Post) == 0 and await _count(api, Target) == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"targets": []}, "TARGETS_REQUIRED"),
        ({"targets": [{"accountId": "acct_" + "z" * 24}]}, "ACCOUNT_NOT_FOUND"),
        ({"targets": [{"accountId": "post_" + "z" * 24}]}, "ACCOUNT_NOT_FOUND"),
        ({"text": "x" * 100_001}, "TEXT_TOO_LONG"),
        ({"thread": ["x"] * 101}, "THREAD_TOO_LONG"),
        ({"mediaIds": ["nope"]}, "MEDIA_NOT_FOUND"),
        ({"overrides": [{"provider": "nope", "text": "x"}]}, "UNKNOWN_PROVIDER"),
        ({"campaignId": "camp_" + "z" * 24}, "CAMPAIGN_NOT_FOUND"),
        ({"text": ""}, "EMPTY_POST"),
    ],
)
async def test_bad_input_is_a_user_error(api, org, accounts, change, code):
    variables = {"input": {"text": "ok", "targets": [{"accountId": accounts["sandbox"]}], **change}}
    body = await api.graphql(CREATE, variables, key=org.secret)
    assert code in [e["code"] for e in body["data"]["createPost"]["userErrors"]], body
    assert await _count(api, Post) == 0


async def test_update_only_drafts(api, org, accounts):
    created = (await api.graphql(CREATE, {"input": {"text": "v1", "targets": [{"accountId": accounts["sandbox"]}]}}, key=org.secret))
    post_id = created["data"]["createPost"]["post"]["id"]
    mutation = """mutation($input: UpdatePostInput!) { updatePost(input: $input) {
      post { text targets { provider } } userErrors { code field } } }"""
    updated = await api.graphql(
        mutation,
        {"input": {"id": post_id, "text": "v2", "targets": [{"accountId": accounts["sandbox"]}, {"accountId": accounts["strict"], "settings": {"board": "fun"}}]}},
        key=org.secret,
    )
    assert updated["data"]["updatePost"]["post"]["text"] == "v2"
    assert sorted(t["provider"] for t in updated["data"]["updatePost"]["post"]["targets"]) == ["sandbox", "strict"]
    too_long = await api.graphql(mutation, {"input": {"id": post_id, "text": "far too long for strict"}}, key=org.secret)
    assert too_long["data"]["updatePost"]["userErrors"][0]["code"] == "TEXT_TOO_LONG"
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).where(Target.post_id == post_id).values(status="scheduled"))
    conflict = await api.graphql(mutation, {"input": {"id": post_id, "text": "v3"}}, key=org.secret)
    assert conflict["data"]["updatePost"]["userErrors"] == [{"code": "CONFLICT", "field": ["id"]}]
    post = await api.graphql("query($id: ID!) { post(id: $id) { text status } }", {"id": post_id}, key=org.secret)
    assert post["data"]["post"] == {"text": "v2", "status": "SCHEDULED"}


async def test_delete_cancels_waiting_targets(api, org, accounts):
    created = await api.graphql(CREATE, {"input": {"text": "bye", "targets": [{"accountId": accounts["sandbox"]}]}}, key=org.secret)
    post_id = created["data"]["createPost"]["post"]["id"]
    deleted = await api.graphql("mutation($id: ID!) { deletePost(input: {id: $id}) { post { id } userErrors { code } } }", {"id": post_id}, key=org.secret)
    assert deleted["data"]["deletePost"]["userErrors"] == []
    assert (await api.graphql("query($id: ID!) { post(id: $id) { id } }", {"id": post_id}, key=org.secret))["data"]["post"] is None
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(Target.status))).scalars().all() == ["canceled"]


async def test_filters(api, org, accounts):
    a = (await api.graphql(CREATE, {"input": {"text": "a", "targets": [{"accountId": accounts["sandbox"]}]}}, key=org.secret))["data"]["createPost"]["post"]["id"]
    b = (await api.graphql(CREATE, {"input": {"text": "b", "targets": [{"accountId": accounts["strict"], "settings": {"board": "fun"}}]}}, key=org.secret))["data"]["createPost"]["post"]["id"]
    async with api.runtime.database.write() as session:
        await session.execute(update(Target).where(Target.post_id == b).values(status="published"))

    async def ids(filter_):
        body = await api.graphql("query($f: PostFilter) { posts(filter: $f) { nodes { id } } }", {"f": filter_}, key=org.secret)
        assert "errors" not in body, body
        return [n["id"] for n in body["data"]["posts"]["nodes"]]

    assert await ids(None) == [b, a]
    assert await ids({"status": "PUBLISHED"}) == [b]
    assert await ids({"status": "DRAFT"}) == [a]
    assert await ids({"provider": "sandbox"}) == [a]
    assert await ids({"accountId": accounts["strict"]}) == [b]
    assert await ids({"from": "2000-01-01T00:00:00+00:00", "to": "2100-01-01T00:00:00Z"}) == [b, a]
    assert await ids({"from": "2100-01-01T00:00:00+05:00"}) == []
    naive = await api.graphql('{ posts(filter: {from: "2026-01-01T00:00:00"}) { nodes { id } } }', key=org.secret)
    assert naive["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad = await api.graphql('{ posts(filter: {from: "yesterday"}) { nodes { id } } }', key=org.secret)
    assert bad["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED")


def test_derived_status_rules():
    from gateway.content.posts import derive_status

    assert derive_status([]) == "draft"
    assert derive_status(["draft", "draft"]) == "draft"
    assert derive_status(["scheduled", "draft"]) == "scheduled"
    assert derive_status(["published", "publishing"]) == "publishing"
    assert derive_status(["published"]) == "published"
    assert derive_status(["published", "failed"]) == "partially_published"
    assert derive_status(["failed", "canceled"]) == "failed"
    assert derive_status(["unconfirmed", "failed"]) == "unconfirmed"
    assert derive_status(["canceled"]) == "canceled"


async def test_posts_are_isolated_between_orgs(api, org, accounts):
    other = await make_org_with_key(api.runtime, name="Other")
    their_account = (await connect(api, other.secret, credentials={"handle": "theirs"}))["account"]["id"]
    their_media = await _image(api, org, organization_id=other.organization_id)
    theirs = await api.graphql(CREATE, {"input": {"text": "secret plans", "targets": [{"accountId": their_account}]}}, key=other.secret)
    their_post = theirs["data"]["createPost"]["post"]
    for query, variables in [
        ("query($id: ID!) { post(id: $id) { id } }", {"id": their_post["id"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": their_post["id"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": their_post["targets"][0]["id"]}),
    ]:
        body = await api.graphql(query, variables, key=org.secret)
        assert list(body["data"].values()) == [None]
    assert (await api.graphql("{ posts { nodes { id } } }", key=org.secret))["data"]["posts"]["nodes"] == []
    for mutation in ("updatePost", "deletePost"):
        body = await api.graphql(
            f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ userErrors {{ code }} }} }}", {"id": their_post["id"]}, key=org.secret
        )
        assert body["data"][mutation]["userErrors"] == [{"code": "POST_NOT_FOUND"}]
    stolen = await api.graphql(
        CREATE, {"input": {"text": "x", "mediaIds": [their_media], "targets": [{"accountId": their_account}]}}, key=org.secret
    )
    assert {e["code"] for e in stolen["data"]["createPost"]["userErrors"]} == {"ACCOUNT_NOT_FOUND", "MEDIA_NOT_FOUND"}
    still = await api.graphql("query($id: ID!) { post(id: $id) { text } }", {"id": their_post["id"]}, key=other.secret)
    assert still["data"]["post"]["text"] == "secret plans"


async def test_concurrent_idempotent_creates_make_one_post(api, org, accounts):
    variables = {"input": {"text": "once", "targets": [{"accountId": accounts["sandbox"]}], "idempotencyKey": "launch-1"}}
    results = await asyncio.gather(*(api.graphql(CREATE, variables, key=org.secret) for _ in range(8)))
    ids = {r["data"]["createPost"]["post"]["id"] for r in results}
    assert len(ids) == 1
    assert await _count(api, Post) == 1


async def test_listing_does_not_grow_sql_with_page_size(api, org, accounts):
    media = await _image(api, org)
    for i in range(100):
        body = await api.graphql(
            CREATE,
            {"input": {"text": f"post {i}", "mediaIds": [media], "targets": [{"accountId": accounts["sandbox"]}, {"accountId": accounts["strict"], "settings": {"board": "fun"}}]}},
            key=org.secret,
        )
        assert body["data"]["createPost"]["userErrors"] == []
    query = """query($n: Int) { posts(first: $n) { nodes { id status media { id url } targets { status account { handle provider } } } } }"""
    engine = api.runtime.database.engine.sync_engine
    # Only the request's statements count: stop the background work that reads the same engine.
    if api.runtime.scheduler is not None:
        await api.runtime.scheduler.stop()
        api.runtime.scheduler = None
    if api.runtime.webhook_dispatcher is not None:  # it looks for due deliveries on the same engine
        await api.runtime.webhook_dispatcher.stop()
        api.runtime.webhook_dispatcher = None
    await api.runtime.relay.stop()

    async def statements_for(n: int) -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731 - the statement text
        event.listen(engine, "before_cursor_execute", listener)
        try:
            body = await api.graphql(query, {"n": n}, key=org.secret)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert len(body["data"]["posts"]["nodes"]) == n
        return len(seen)

    assert await statements_for(10) == await statements_for(100)
