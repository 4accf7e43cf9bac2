"""Columns the database derives, read back into the session's objects before the commit.

``posts.status`` is written by a trigger on ``targets`` (``gateway.content.post_status``), so a
Post the transaction holds does not see what its targets' changes made of it. A mutation that
answers with that Post (cancelPost, deletePost, a move between campaigns) would show the status
from before. Before the commit, one SELECT per 500 Posts in the session reads their status back.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from gateway.storage.models import Post

BATCH = 500


async def refresh_derived(session: AsyncSession) -> None:
    posts = {obj.id: obj for obj in session.identity_map.values() if isinstance(obj, Post) and obj.id is not None}
    if not posts:
        return
    await session.flush()  # the targets' pending changes fire the trigger first
    ids = list(posts)
    for low in range(0, len(ids), BATCH):
        chunk = ids[low:low + BATCH]
        for post_id, status in await session.execute(select(Post.id, Post.status).where(Post.id.in_(chunk))):
            set_committed_value(posts[post_id], "status", status)
