"""Posts out of the gateway, as CSV or JSON (``socialgate export posts``), with the posts list's filters.

The CSV has the import's columns (text, accounts, publish_at, campaign), so an exported file can
be edited and imported again, plus columns for people to read (id, status, created_at,
platform_urls) that an import skips. JSON has every target with its own status and times.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from typing import Any, TextIO

from gateway.content import PostFilter, derive_status, list_posts, targets_of
from gateway.core import MAX_PAGE_SIZE, PageRequest
from gateway.runtime import Runtime
from gateway.storage import Database, Post, Target

FORMATS = ("csv", "json")
CSV_COLUMNS = ("id", "status", "text", "accounts", "publish_at", "campaign", "created_at", "platform_urls")


async def posts_with_targets(database: Database, organization_id: str, filters: PostFilter) -> AsyncIterator[tuple[Post, list[Target]]]:
    """Every post the filters select, newest first, with its targets; read a page at a time."""
    after = None
    while True:
        async with database.read() as session:
            page = await list_posts(session, organization_id, filters, PageRequest(first=MAX_PAGE_SIZE, after=after))
            targets = await targets_of(session, [p.id for p in page.items])
        for post in page.items:
            yield post, targets[post.id]
        if not page.has_next_page:
            return
        after = page.cursors[-1]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def as_json(post: Post, targets: list[Target]) -> dict[str, Any]:
    return {
        "id": post.id, "status": derive_status([t.status for t in targets]), "text": post.text, "campaignId": post.campaign_id,
        "createdAt": _iso(post.created_at),
        "targets": [
            {"id": t.id, "accountId": t.account_id, "provider": t.provider, "status": t.status, "publishAt": _iso(t.publish_at),
             "publishedAt": _iso(t.published_at), "platformUrl": t.platform_url}
            for t in targets
        ],
    }


def as_csv_row(post: Post, targets: list[Target]) -> dict[str, str]:
    times = [t.publish_at for t in targets if t.publish_at is not None]
    return {
        "id": post.id, "status": derive_status([t.status for t in targets]), "text": post.text,
        "accounts": " ".join(t.account_id for t in targets), "publish_at": _iso(min(times)) if times else "",
        "campaign": post.campaign_id or "", "created_at": _iso(post.created_at) or "",
        "platform_urls": " ".join(t.platform_url for t in targets if t.platform_url),
    }


async def export_posts(runtime: Runtime, organization_id: str, filters: PostFilter, output: TextIO, fmt: str) -> int:
    """Write the posts to ``output``; returns how many."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(output, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        async for post, targets in posts_with_targets(runtime.database, organization_id, filters):
            writer.writerow(as_csv_row(post, targets))
            count += 1
        return count
    output.write("[")
    async for post, targets in posts_with_targets(runtime.database, organization_id, filters):
        output.write(("," if count else "") + "\n  " + json.dumps(as_json(post, targets), ensure_ascii=False))
        count += 1
    output.write("\n]\n")
    return count
