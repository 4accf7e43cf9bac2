"""Conformance checks for providers whose publish prepares before it publishes, or answers ``Processing``.

The kit's network check expects the first request of a publish to be the one that publishes (a
timeout there is ``Unconfirmed``). Threads, TikTok and YouTube first make a container, read the
creator's settings or open an upload session: a timeout there published nothing and must be a
``TransientError`` (a retry is safe), while a timeout on the request that does publish is
``Unconfirmed``. ``PreparesBeforePublishing`` checks both. ``PublishesThroughPolling`` checks a
publish that always answers ``Processing`` (TikTok, YouTube): the scripted publish, then a poll of
its handle, end in the expected post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from providers import Processing, ProviderContext, PublishRequest, PublishResult, TransientError, Unconfirmed
from providers.store import MemoryProviderStore
from providers.testing import Outcome, ProviderConformance, Reply, Step, call_scripted, request_line
from providers.validation import publish_checked


def poll_scripted(
    conformance: ProviderConformance, steps: Sequence[Step], handle: Mapping[str, Any], request: PublishRequest | None = None
) -> Outcome:
    """``poll(request, handle)`` against ``steps`` with the class's credentials and stored records."""
    provider = conformance.provider
    return conformance.run(
        call_scripted(
            provider, steps, lambda ctx: provider.poll(ctx, request or conformance.request, handle),
            credentials=conformance.credentials, store=MemoryProviderStore(conformance.stored),
        )
    )


class PreparesBeforePublishing:
    """Mixin (before ``ProviderConformance``): ``publishing_step`` is the index in ``success`` of
    the request that may publish; every request before it only prepares. ``after_lost_answer``
    scripts what the provider asks next when that request's answer is lost (YouTube asks the
    upload session what it holds), failing too."""

    publishing_step: int
    after_lost_answer: Sequence[Step] = ()

    def test_network_failures_map_to_typed_errors(self: Any) -> None:
        first = request_line(self.scripted_publish(self.success).sent[0])
        refused = self.scripted_publish([httpx.ConnectError("connection refused")])
        assert isinstance(refused.error, TransientError), f"a refused connection must be TransientError, got {refused.error!r}"
        lost_early = self.scripted_publish([httpx.ReadTimeout("no answer")])
        assert isinstance(lost_early.error, TransientError), (
            f"no answer while preparing published nothing: TransientError (safe to retry), got {lost_early.error!r}"
        )
        for outcome in (refused, lost_early):
            assert [request_line(r) for r in outcome.sent] == [first]
        steps = list(self.success[: self.publishing_step]) + [httpx.ReadTimeout("no answer"), *self.after_lost_answer]
        lost = self.scripted_publish(steps)
        assert isinstance(lost.error, Unconfirmed), f"no answer to the publishing request must be Unconfirmed, got {lost.error!r}"
        assert len(lost.sent) == len(steps)

    def test_requests_before_the_publishing_one_run_while_preparing(self: Any) -> None:
        """So the gateway's deadline cutting them short is a plain retry, never ``unconfirmed``."""
        contexts: list[ProviderContext] = []
        phases: list[bool] = []

        def noting(step: Step) -> Step:
            def answer(request: httpx.Request) -> Any:
                phases.append(contexts[0].phase.preparing)
                return step(request) if callable(step) and not isinstance(step, Reply | httpx.Response | BaseException) else step
            return answer

        def operation(ctx: ProviderContext) -> Any:
            contexts.append(ctx)
            return publish_checked(self.provider, ctx, self.request)

        steps = [noting(step) for step in self.success]
        outcome = self.run(call_scripted(self.provider, steps, operation, credentials=self.credentials, store=MemoryProviderStore(self.stored)))
        assert outcome.error is None, outcome.error
        expected = [True] * self.publishing_step + [False]
        assert phases[: self.publishing_step + 1] == expected, f"preparing at each request: {phases}"


class PublishesThroughPolling:
    """Mixin (before ``ProviderConformance``): publish answers ``Processing``; ``poll_success`` is
    the platform's answer to the poll that finds the post, ``expected_stage`` the stage shown."""

    poll_success: Sequence[Step] = ()
    expected_stage: str | None = None

    def test_publish_maps_success(self: Any) -> None:
        outcome = self.scripted_publish(self.success)
        assert outcome.error is None, f"publish raised {outcome.error!r}"
        processing = outcome.result
        assert isinstance(processing, Processing), f"publish returned {processing!r}, not Processing"
        assert len(outcome.sent) == len(self.success), f"{len(self.success) - len(outcome.sent)} scripted answers unused"
        if self.expected_stage is not None:
            assert processing.stage == self.expected_stage
        polled = poll_scripted(self, self.poll_success, processing.handle)
        assert polled.error is None, f"poll raised {polled.error!r}"
        result = polled.result
        assert isinstance(result, PublishResult), f"poll returned {result!r}, not a PublishResult"
        assert result.platform_post_id == self.expected_post_id
        if self.expected_url is not None:
            assert result.url == self.expected_url
        assert len(polled.sent) == len(self.poll_success), f"{len(self.poll_success) - len(polled.sent)} scripted poll answers unused"
        self.check_published_requests(outcome.sent + polled.sent)
