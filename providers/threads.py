"""Publishing a post and its thread parts as a chain of replies, resumable after a failure.

A thread is several platform calls. When part 3 of 5 fails (a 429, a 503), the engine retries
the whole target, and sending parts 1 and 2 again would publish them twice. ``publish_thread``
records each part's id in ``ctx.store`` under the request's idempotency key as soon as the
platform confirms it, and a retry resumes after the last confirmed part, replying to it. The
provider only says how to post one part.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from providers.calls import PublishMedia, PublishRequest, PublishResult
from providers.context import ProviderContext

THREAD_PROGRESS = "thread_progress"  # ctx.store kind: idempotency key → the parts confirmed so far


@dataclass(frozen=True)
class PostedPart:
    """One part the platform confirmed: its id, its public URL when known, and the raw answer."""

    post_id: str
    url: str | None = None
    raw: Any = None


# post_part(index, text, media, reply_to) → the posted part; index 0 is the first post, and
# reply_to is the id of the part before (for index 0, the request's own ``reply_to``).
PartPoster = Callable[[int, str, tuple[PublishMedia, ...], str | None], Awaitable[PostedPart]]


async def publish_thread(ctx: ProviderContext, request: PublishRequest, post_part: PartPoster) -> PublishResult:
    """Post the first post and each thread part in order, each replying to the one before.

    Parts confirmed by an earlier attempt of the same request (same idempotency key) are not
    sent again. The result carries the first part's id and URL, the later parts' ids in
    ``thread_post_ids``, and the raw answers of the parts sent by this attempt.
    """
    parts = [(request.text, request.media)] + [(part.text, part.media) for part in request.thread]
    progress = await ctx.store.get(THREAD_PROGRESS, request.idempotency_key) or {"parts": []}
    posted = [PostedPart(p["post_id"], p.get("url")) for p in progress["parts"]][: len(parts)]
    if posted:
        ctx.log.info("resuming a thread after %d confirmed part(s)", len(posted))
    raws = []
    for index in range(len(posted), len(parts)):
        text, media = parts[index]
        reply_to = posted[-1].post_id if posted else request.reply_to
        part = await post_part(index, text, media, reply_to)
        posted.append(part)
        raws.append(part.raw)
        if len(parts) > 1:
            confirmed = [{"post_id": p.post_id, "url": p.url} for p in posted]
            await ctx.store.put(THREAD_PROGRESS, request.idempotency_key, {"parts": confirmed})
    first = posted[0]
    return PublishResult(
        platform_post_id=first.post_id,
        url=first.url,
        raw=raws[0] if len(parts) == 1 else raws,
        thread_post_ids=tuple(p.post_id for p in posted[1:]),
    )
