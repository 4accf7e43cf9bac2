"""SDK pieces the platform providers share: resumable threads, provider draft rules, platform retry waits."""

import asyncio

import httpx
import pytest

from providers import (
    Capabilities,
    Issue,
    Limits,
    PostDraft,
    PostedPart,
    Provider,
    PublishRequest,
    RateLimited,
    ThreadPart,
    TransientError,
    publish_thread,
    validate_draft,
)
from providers.http import raise_for_response
from providers.store import MemoryProviderStore
from providers.testing import ScriptedTransport, make_context, publish_scripted
from providers.threads import THREAD_PROGRESS


class Recorder:
    """A part poster that numbers posts and fails once at the part given."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[int, str, str | None]] = []
        self.fail_at = fail_at
        self.next_id = 100

    async def __call__(self, index, text, media, reply_to):
        self.calls.append((index, text, reply_to))
        if index == self.fail_at:
            self.fail_at = None
            raise TransientError("503 from the platform")
        self.next_id += 1
        return PostedPart(str(self.next_id), f"https://example.social/{self.next_id}", raw={"id": self.next_id})


REQUEST = PublishRequest(text="one", idempotency_key="tgt_thread", thread=(ThreadPart("two"), ThreadPart("three")), reply_to="9")


def test_a_thread_chains_replies_and_reports_every_id():
    ctx = make_context(RuleProvider(), ScriptedTransport())
    poster = Recorder()
    result = asyncio.run(publish_thread(ctx, REQUEST, poster))
    assert poster.calls == [(0, "one", "9"), (1, "two", "101"), (2, "three", "102")]
    assert (result.platform_post_id, result.url, result.thread_post_ids) == ("101", "https://example.social/101", ("102", "103"))
    assert result.raw == [{"id": 101}, {"id": 102}, {"id": 103}]


def test_a_retried_thread_resumes_after_the_last_confirmed_part():
    store = MemoryProviderStore()
    ctx = make_context(RuleProvider(), ScriptedTransport(), store=store)
    poster = Recorder(fail_at=2)
    with pytest.raises(TransientError):
        asyncio.run(publish_thread(ctx, REQUEST, poster))
    assert asyncio.run(store.get(THREAD_PROGRESS, "tgt_thread")) == {
        "parts": [{"post_id": "101", "url": "https://example.social/101"}, {"post_id": "102", "url": "https://example.social/102"}]
    }
    result = asyncio.run(publish_thread(ctx, REQUEST, poster))
    assert poster.calls[-1] == (2, "three", "102")  # only the missing part, replying to the last one confirmed
    assert len(poster.calls) == 4
    assert (result.platform_post_id, result.thread_post_ids) == ("101", ("102", "103"))


def test_a_single_post_keeps_no_progress():
    store = MemoryProviderStore()
    ctx = make_context(RuleProvider(), ScriptedTransport(), store=store)
    result = asyncio.run(publish_thread(ctx, PublishRequest(text="solo", idempotency_key="tgt_solo"), Recorder()))
    assert (result.platform_post_id, result.raw, result.thread_post_ids) == ("101", {"id": 101}, ())
    assert asyncio.run(store.list(THREAD_PROGRESS)) == []


class RuleProvider(Provider):
    """A provider with a rule its limits cannot say: no text may mention "forbidden" with media."""

    id = "rules"
    name = "Rules"
    capabilities = Capabilities()
    limits = Limits(max_text_length=100, max_media=1, media_kinds=frozenset({"image"}))

    def check_draft(self, draft):
        if "forbidden" in draft.text:
            return [Issue(("text",), "PLATFORM_RULE", "Rules refuses that word.")]
        return []

    async def publish(self, ctx, request):
        raise AssertionError("never reached: the draft is invalid")


def test_provider_draft_rules_join_validation_and_block_publishing():
    assert [i.code for i in validate_draft(RuleProvider(), PostDraft(text="forbidden " + "a" * 100))] == ["TEXT_TOO_LONG", "PLATFORM_RULE"]
    outcome = asyncio.run(publish_scripted(RuleProvider(), [], PublishRequest(text="forbidden", idempotency_key="k")))
    assert outcome.error.code == "VALIDATION_FAILED" and outcome.sent == []


def test_a_platform_supplied_wait_wins_over_the_header():
    response = httpx.Response(429, headers={"Retry-After": "60"}, request=httpx.Request("POST", "https://x.example"))
    with pytest.raises(RateLimited) as raised:
        raise_for_response(response, retry_after=2.5)
    assert raised.value.retry_after == 2.5
    with pytest.raises(RateLimited) as raised:
        raise_for_response(response, retry_after=-3)  # a reset time already past: retry now
    assert raised.value.retry_after == 0
    with pytest.raises(RateLimited) as raised:
        raise_for_response(response)
    assert raised.value.retry_after == 60
