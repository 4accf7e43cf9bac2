"""createPost's write path (issue 21, point 6): the post and its targets go in as Core INSERTs,
never through the ORM's unit of work, and come back the same as before."""

from sqlalchemy import event
from sqlalchemy.orm import Session

from gateway.storage import Post, Target
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
