"""Rows found by id within one organization: another organization's, a deleted one, or a malformed id are not found."""

import pytest

from gateway.auth.tenancy import find_owned, require_owned
from gateway.core.errors import UserError
from gateway.storage.models import Post
from tests.engine import new_post, sandbox_account, setup_org

DELETE = """mutation($id: ID!) { deletePost(input: {id: $id}) { post { id } userErrors { code } } }"""


async def test_a_deleted_row_is_not_found_and_a_mutation_is_told_which_input(api):
    org = await setup_org(api)
    post_id = await new_post(api, org.secret, [await sandbox_account(api, org.secret, "tenancy")])
    async with api.runtime.database.read() as session:
        assert (await find_owned(session, Post, "post", org.organization_id, post_id)).id == post_id
        assert await find_owned(session, Post, "post", "org_" + "x" * 24, post_id) is None
        assert await find_owned(session, Post, "acct", org.organization_id, post_id) is None
    deleted = await api.graphql(DELETE, {"id": post_id}, key=org.secret)
    assert deleted["data"]["deletePost"]["userErrors"] == []
    async with api.runtime.database.read() as session:
        assert (await session.get(Post, post_id)).deleted_at is not None  # kept, marked deleted
        assert await find_owned(session, Post, "post", org.organization_id, post_id) is None
        with pytest.raises(UserError) as refused:
            await require_owned(session, Post, "post", org.organization_id, post_id, code="POST_NOT_FOUND", noun="post")
    assert (refused.value.code, refused.value.message, refused.value.field) == ("POST_NOT_FOUND", "No post with that id.", ["id"])
