"""The conformance kit: check a provider against its platform's real responses from your own pytest suite.

Subclass ``ProviderConformance`` in a test module (its name must start with ``Test``), point it at
your provider, script the platform's answers, and pytest runs every check::

    from providers.testing import ErrorCase, ProviderConformance, reply

    class TestSlackConformance(ProviderConformance):
        provider = SlackWebhook()
        credentials = {"webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX"}
        success = [reply(200, text="ok")]
        error_cases = [
            ErrorCase("rate limited", [reply(429, text="rate_limited", headers={"Retry-After": "30"})], RateLimited, retry_after=30),
            ...
        ]

        def check_published_requests(self, sent):
            assert sent[0].method == "POST" and ...

The checks: the declarations are consistent; a sample credentials form validates; publish maps
the scripted success, every error case, and network failures (refused connection →
``TransientError``, no answer after sending → ``Unconfirmed``) to the right typed results; the
error cases cover the whole taxonomy; limits reject what the platform would reject (generated
boundary drafts plus your own ``platform_rejects``); and nothing is sent when validation fails.

The kit needs only pytest and httpx; its checks run their coroutines with ``asyncio.run``, so no
async pytest plugin is required.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from providers.calls import BytesSource, PublishMedia, PublishRequest, PublishResult, ThreadPart
from providers.context import ProviderContext, new_http_client
from providers.declarations import TextLimit
from providers.errors import AuthExpired, ProviderError, RateLimited, Rejected, TransientError, Unconfirmed
from providers.metrics import ACCOUNT_FIGURES, POST_FIGURES, AccountMetricSnapshot, MetricSnapshot
from providers.processing import Processing
from providers.provider import Provider
from providers.store import MemoryProviderStore, ProviderStore
from providers.validation import DraftMedia, Issue, PostDraft, check_declarations, publish_checked, validate_credentials, validate_draft

T = TypeVar("T")
FIXED_NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Reply:
    """A scripted platform answer; a fresh ``httpx.Response`` is built each time it is used."""

    status_code: int
    content: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status_code, headers=dict(self.headers), content=self.content, request=request)


def reply(status_code: int, *, json: Any = None, text: str | None = None, headers: Mapping[str, str] | None = None) -> Reply:
    """A scripted answer with a JSON body (``json=``) or a text body (``text=``)."""
    all_headers = dict(headers or {})
    if json is not None:
        content = jsonlib.dumps(json).encode()
        all_headers.setdefault("Content-Type", "application/json")
    else:
        content = (text or "").encode()
        all_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    return Reply(status_code, content, all_headers)


# One step of a script: an answer, an exception to raise instead (httpx.ReadTimeout…), or a
# function of the request returning either.
Step = Reply | httpx.Response | BaseException | Callable[[httpx.Request], Any]


class UnscriptedRequest(AssertionError):
    """The provider sent a request the script has no answer for: a test failure, never an outcome."""


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Answers requests from a script, in order, and records every request sent.

    A request beyond the end of the script fails the test: the provider sent something unexpected.
    The failure is also remembered in ``unscripted``, because a provider that catches broadly
    (``except Exception``) could otherwise turn it into an ordinary error and hide it.
    """

    def __init__(self, steps: Sequence[Step] = ()) -> None:
        self.steps = list(steps)
        self.sent: list[httpx.Request] = []
        self.unscripted: UnscriptedRequest | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(request)
        if len(self.sent) > len(self.steps):
            failure = UnscriptedRequest(f"unscripted request #{len(self.sent)}: {request.method} {request.url}")
            self.unscripted = self.unscripted or failure
            raise failure
        step = self.steps[len(self.sent) - 1]
        if callable(step) and not isinstance(step, (Reply, httpx.Response, BaseException)):
            step = step(request)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, httpx.Response):
            return httpx.Response(step.status_code, headers=step.headers, content=step.content, request=request)
        return step.response(request)

    @property
    def unused(self) -> int:
        return len(self.steps) - len(self.sent)


@dataclass
class Outcome:
    """What one scripted call produced: a result or a typed error, and the requests sent."""

    result: Any = None
    error: BaseException | None = None
    sent: list[httpx.Request] = field(default_factory=list)


def make_context(
    provider: Provider,
    transport: httpx.AsyncBaseTransport,
    *,
    credentials: Mapping[str, Any] | None = None,
    store: ProviderStore | None = None,
    now: datetime = FIXED_NOW,
) -> ProviderContext:
    """A context like the gateway's, on ``transport``, with a fixed clock and an in-memory store."""

    async def no_wait(_seconds: float) -> None:
        return None

    return ProviderContext(
        http=new_http_client(transport),
        provider_id=provider.id,
        account_id="acct_conformance",
        credentials=dict(credentials or {}),
        clock=lambda: now,
        store=store if store is not None else MemoryProviderStore(),
        sleep=no_wait,
    )


async def call_scripted(
    provider: Provider,
    steps: Sequence[Step],
    operation: Callable[[ProviderContext], Coroutine[Any, Any, T]],
    *,
    credentials: Mapping[str, Any] | None = None,
    store: ProviderStore | None = None,
) -> Outcome:
    """Run ``operation(ctx)`` against a scripted transport and report what happened.

    ``store`` is the account's store for the call (a fresh empty one when None): pass one holding
    what an earlier call kept, such as a session a provider reuses instead of logging in again.

    Only the platform's kinds of failure (a ``ProviderError``, an ``httpx.HTTPError``) become the
    outcome's ``error``. A request the script did not expect raises ``UnscriptedRequest`` even
    when the provider caught it: counted as an outcome, it would pass any test expecting an error.
    """
    transport = ScriptedTransport(steps)
    ctx = make_context(provider, transport, credentials=credentials, store=store)
    outcome = Outcome(sent=transport.sent)
    try:
        outcome.result = await operation(ctx)
    except (ProviderError, httpx.HTTPError) as exc:
        outcome.error = exc
    finally:
        await ctx.http.aclose()
    if transport.unscripted is not None:
        raise transport.unscripted
    return outcome


async def publish_scripted(
    provider: Provider,
    steps: Sequence[Step],
    request: PublishRequest,
    *,
    credentials: Mapping[str, Any] | None = None,
    store: ProviderStore | None = None,
) -> Outcome:
    """Publish ``request`` through the gateway's path (validation first) against scripted answers."""
    return await call_scripted(
        provider, steps, lambda ctx: publish_checked(provider, ctx, request), credentials=credentials, store=store
    )


def sample_request(text: str = "Hello from the socialgate conformance kit", **overrides: Any) -> PublishRequest:
    return PublishRequest(text=text, idempotency_key=overrides.pop("idempotency_key", "tgt_conformance0000000000001"), **overrides)


def sample_media(kind: str, size_bytes: int = 1024) -> PublishMedia:
    """An attachment of ``kind`` with ``size_bytes`` of bytes behind a public-looking URL."""
    mime = {"image": "image/png", "gif": "image/gif", "video": "video/mp4", "document": "application/pdf"}[kind]
    return PublishMedia(
        kind=kind, mime_type=mime, size_bytes=size_bytes, url=f"https://media.example.com/{kind}.bin",
        source=BytesSource(b"\0" * min(size_bytes, 1024)), alt_text=f"a sample {kind}",
    )


@dataclass(frozen=True)
class ErrorCase:
    """A platform answer (or several) and the typed error publish must raise for it."""

    label: str
    steps: Sequence[Step]
    raises: type[ProviderError]
    code: str | None = None  # the ProviderError.code expected, when it matters
    retry_after: float | None = None  # for RateLimited: the seconds expected
    credentials: Mapping[str, Any] | None = None  # instead of the class's, for this case only
    stored: Mapping[tuple[str, str], Mapping[str, Any]] | None = None  # instead of the class's, for this case only
    # "METHOD URL" (no query) of each request the case must send, in order. When unset, every
    # request must be one the successful publish sends (same method, same URL).
    sends: Sequence[str] | None = None


def request_line(request: httpx.Request) -> str:
    """``"POST https://host/path"``: what a request is, without its query, headers or body."""
    return f"{request.method} {request.url.copy_with(query=None, fragment=None)}"


@dataclass(frozen=True)
class RejectedDraft:
    """A draft the real platform refuses, and the issue code validation must report for it."""

    label: str
    draft: PostDraft
    code: str


def _codes(issues: list[Issue]) -> set[str]:
    return {issue.code for issue in issues}


class ProviderConformance:
    """Subclass in a ``Test…`` class; set the attributes; implement ``check_published_requests``."""

    provider: Provider
    credentials: Mapping[str, Any] = {}
    request: PublishRequest = sample_request()
    success: Sequence[Step] = ()
    expected_post_id: str | None = None
    expected_url: str | None = None
    error_cases: Sequence[ErrorCase] = ()
    platform_rejects: Sequence[RejectedDraft] = ()
    platform_accepts: Sequence[PostDraft] = ()
    # False for a provider that talks to no remote platform (the sandbox): it must send nothing.
    uses_http: bool = True
    # Records, keyed by (kind, key), the account's store holds before each scripted publish: what
    # an earlier call kept (a provider that reuses a login session keeps it there).
    stored: Mapping[tuple[str, str], Mapping[str, Any]] = {}
    # Metrics, for a provider that declares ``metrics``: the post ids read, the platform's real
    # answer to them, and each id's expected figures (a figure left out is expected None).
    metrics_ids: Sequence[str] = ()
    metrics_success: Sequence[Step] = ()
    expected_metrics: Mapping[str, Mapping[str, int | None]] = {}
    # The same answer with one counter left out, and the (id, figure) that must then be None, not 0.
    metrics_omitting: Sequence[Step] = ()
    omitted_figure: tuple[str, str] | None = None
    # The platform's real answer for the account's totals, and the figures expected of it.
    account_metrics_success: Sequence[Step] = ()
    expected_account_metrics: Mapping[str, int | None] = {}
    # Processing, for a provider that declares ``capabilities.processing``: a publish the platform
    # answers "still working" (``processing_request``, default ``request``; ``processing_publish``:
    # its real answers), then each poll round's real answers in order (``processing_polls``):
    # every round but the last must answer ``Processing``, the last the ``PublishResult``.
    # ``processing_failed``: the answers of a poll that finds the container failed (ERROR,
    # EXPIRED): it must raise ``Rejected``, never ``Unconfirmed``, since nothing was published.
    processing_request: PublishRequest | None = None
    processing_credentials: Mapping[str, Any] | None = None  # instead of ``credentials``, for these checks
    processing_publish: Sequence[Step] = ()
    processing_polls: Sequence[Sequence[Step]] = ()
    processing_expected_post_id: str | None = None
    processing_failed: Sequence[Step] = ()
    processing_failed_credentials: Mapping[str, Any] | None = None  # for a provider told how to fail by its account (the sandbox)
    # Instead of ``processing_failed``, for a provider whose poll has no failed state to find:
    # why (the platform reports a failure elsewhere, and the gateway's processing deadline ends it).
    processing_failure_unseen: str = ""
    # A publish that always answers ``Processing`` (TikTok, YouTube): ``poll_success`` is the
    # platform's answer to the poll that finds the post, so the successful publish is the scripted
    # publish then that poll; ``expected_stage`` is the stage its ``Processing`` shows.
    poll_success: Sequence[Step] = ()
    expected_stage: str | None = None
    # The index in ``success`` of the request that may publish. Every request before it only
    # prepares (reads settings, makes a container, uploads): no answer there published nothing
    # (``TransientError``, a safe retry), and it runs inside ``ctx.preparing()``.
    # ``after_lost_answer``: what the provider asks next when the publishing request's answer is
    # lost (YouTube asks its upload session what it holds), failing too.
    publishing_step: int = 0
    after_lost_answer: Sequence[Step] = ()

    # -- for the author ---------------------------------------------------------------------

    def check_published_requests(self, sent: list[httpx.Request]) -> None:
        """Assert the exact method, URL, headers and body of the successful publish's requests."""
        raise AssertionError(
            f"{type(self).__name__} must override check_published_requests to assert what a publish sends"
        )

    def check_error_requests(self, case: ErrorCase, sent: list[httpx.Request]) -> None:
        """Assert an error case sent what it should: its ``sends``, or else only requests the
        successful publish sends. Override for flows that differ in ways these cannot say."""
        lines = [request_line(request) for request in sent]
        if case.sends is not None:
            assert lines == list(case.sends), f"{case.label}: sent {lines}, expected {list(case.sends)}"
            return
        known = self.successful_request_lines()
        strange = [line for line in lines if line not in known]
        assert not strange, (
            f"{case.label}: sent {strange}, which the successful publish never sends {sorted(known)}; "
            "set the case's `sends` if that is right"
        )

    def successful_request_lines(self) -> set[str]:
        """The ``request_line`` of every request the scripted successful publish sends."""
        return {request_line(request) for request in self.scripted_publish(self.success).sent}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coroutine)

    def scripted_publish(
        self, steps: Sequence[Step], request: PublishRequest | None = None, *, case: ErrorCase | None = None
    ) -> Outcome:
        """Publish (``self.request`` by default) against ``steps``, with the class's credentials and
        stored records, or those of ``case`` where it sets its own."""
        credentials = self.credentials if case is None or case.credentials is None else case.credentials
        stored = self.stored if case is None or case.stored is None else case.stored
        return self.run(
            publish_scripted(
                self.provider, steps, request or self.request, credentials=credentials, store=MemoryProviderStore(stored)
            )
        )

    def valid_draft(self) -> PostDraft:
        """A draft this provider accepts: short text, a media item if required, required settings set."""
        limits = self.provider.limits
        media: tuple[DraftMedia, ...] = ()
        if limits.media_required:
            kind = sorted(limits.media_kinds)[0]
            media = (DraftMedia(kind, sample_media(kind).mime_type, 1024),)
        settings = {s.name: _a_valid_value(s) for s in self.provider.settings if s.required and s.default is None}
        return PostDraft(text="hello", media=media, settings=settings)

    def scripted_metrics(self, steps: Sequence[Step]) -> list[MetricSnapshot]:
        """``fetch_metrics(metrics_ids)`` against ``steps``; fails on an error or an unused answer."""
        outcome = self.run(
            call_scripted(
                self.provider, steps, lambda ctx: self.provider.fetch_metrics(ctx, list(self.metrics_ids)),
                credentials=self.credentials, store=MemoryProviderStore(self.stored),
            )
        )
        assert outcome.error is None, f"fetch_metrics raised {outcome.error!r}"
        assert len(outcome.sent) == len(steps), f"{len(steps) - len(outcome.sent)} scripted metrics answers unused"
        assert all(isinstance(s, MetricSnapshot) for s in outcome.result), "fetch_metrics returns MetricSnapshot objects"
        return list(outcome.result)

    def _metrics_declared(self) -> Any:
        spec = self.provider.metrics
        if spec is None or not self.uses_http:
            pytest.skip("the provider reads no metrics from a platform")
        return spec

    def _processing_declared(self) -> None:
        if not self.provider.capabilities.processing:
            pytest.skip("the provider never answers Processing")
        assert self.processing_polls and (self.processing_publish or not self.uses_http), (
            "script a publish the platform answers 'still processing' (processing_publish) and each poll round (processing_polls)"
        )

    def scripted_processing(self, polls: Sequence[Sequence[Step]], credentials: Mapping[str, Any] | None = None) -> list[Outcome]:
        """Publish ``processing_request``, then poll once per entry of ``polls`` with the handle the
        last ``Processing`` carried, each against its own scripted answers; stops at the first
        answer that is not ``Processing``. The account's store is shared by every call, as in the
        gateway, where a poll may run on another worker after a restart."""
        request = self.processing_request or self.request
        credentials = credentials if credentials is not None else self.processing_credentials or self.credentials
        store = MemoryProviderStore(self.stored)

        async def run_all() -> list[Outcome]:
            outcomes = [await publish_scripted(self.provider, self.processing_publish, request, credentials=credentials, store=store)]
            for steps in polls:
                answer = outcomes[-1].result
                if not isinstance(answer, Processing):
                    break
                json_handle = jsonlib.loads(jsonlib.dumps(dict(answer.handle)))  # as stored: the gateway keeps it as JSON
                outcomes.append(await call_scripted(
                    self.provider, steps, lambda ctx, h=json_handle: self.provider.poll(ctx, request, h), credentials=credentials, store=store,
                ))
            return outcomes

        return self.run(run_all())

    # -- the checks -------------------------------------------------------------------------

    def test_processing_publish_then_poll_rounds(self) -> None:
        self._processing_declared()
        outcomes = self.scripted_processing(self.processing_polls)
        first, *polls = outcomes
        assert first.error is None and isinstance(first.result, Processing), f"publish answered {first.result!r} / {first.error!r}, not Processing"
        assert len(first.sent) == len(self.processing_publish), "scripted publish answers unused"
        assert len(polls) == len(self.processing_polls), f"only {len(polls)} of {len(self.processing_polls)} poll rounds ran"
        for number, (outcome, steps) in enumerate(zip(polls, self.processing_polls, strict=True), start=1):
            assert outcome.error is None, f"poll {number} raised {outcome.error!r}"
            assert len(outcome.sent) == len(steps), f"poll {number}: {len(steps) - len(outcome.sent)} scripted answers unused"
            last = number == len(polls)
            wanted = PublishResult if last else Processing
            assert isinstance(outcome.result, wanted), f"poll {number} answered {outcome.result!r}, expected a {wanted.__name__}"
        result = polls[-1].result
        if self.processing_expected_post_id is not None:
            assert result.platform_post_id == self.processing_expected_post_id

    def test_a_failed_container_is_rejected_never_unconfirmed(self) -> None:
        self._processing_declared()
        if self.processing_failure_unseen:
            assert not self.processing_failed, "script processing_failed or explain processing_failure_unseen, not both"
            pytest.skip(self.processing_failure_unseen)
        assert self.processing_failed or not self.uses_http, (
            "script a poll that finds the container failed (processing_failed), or say why none can (processing_failure_unseen)"
        )
        outcomes = self.scripted_processing([self.processing_failed], credentials=self.processing_failed_credentials)
        assert len(outcomes) == 2, f"publish answered {outcomes[0].result!r} / {outcomes[0].error!r}, not Processing"
        failed = outcomes[1]
        assert isinstance(failed.error, Rejected), f"a failed container must raise Rejected, got {failed.error!r} (result {failed.result!r})"
        assert not isinstance(failed.error, Unconfirmed), "nothing was published: a failed container is never Unconfirmed"
        assert len(failed.sent) == len(self.processing_failed), "scripted poll answers unused"


    def test_metrics_map_the_platform_answer(self) -> None:
        spec = self._metrics_declared()
        if not spec.post:
            pytest.skip("the provider reads no post figures")
        assert self.metrics_ids and self.metrics_success and self.expected_metrics, (
            "script the platform's real metrics answer: metrics_ids, metrics_success, expected_metrics"
        )
        assert len(self.metrics_ids) <= spec.batch_size, "metrics_ids must fit in one batch"
        snapshots = {s.platform_post_id: s for s in self.scripted_metrics(self.metrics_success)}
        assert set(snapshots) == set(self.expected_metrics), f"snapshots for {sorted(snapshots)}, expected {sorted(self.expected_metrics)}"
        for post_id, expected in self.expected_metrics.items():
            unknown = set(expected) - set(POST_FIGURES)
            assert not unknown, f"expected_metrics names figures outside the vocabulary: {sorted(unknown)}"
            wanted = {name: expected.get(name) for name in POST_FIGURES}
            assert snapshots[post_id].figures() == wanted, f"{post_id}: mapped {snapshots[post_id].figures()}, expected {wanted}"
            undeclared = {n for n, v in snapshots[post_id].figures().items() if v is not None and n not in spec.post}
            assert not undeclared, f"{post_id}: figures {sorted(undeclared)} are reported but not declared in metrics.post"

    def test_a_counter_the_platform_omits_is_none_not_zero(self) -> None:
        spec = self._metrics_declared()
        if not spec.post:
            pytest.skip("the provider reads no post figures")
        assert self.metrics_omitting and self.omitted_figure, (
            "script an answer that leaves one counter out (metrics_omitting) and name it in omitted_figure=(id, figure)"
        )
        post_id, figure = self.omitted_figure
        assert figure in spec.post, f"{figure} is not a figure the provider declares"
        snapshots = {s.platform_post_id: s for s in self.scripted_metrics(self.metrics_omitting)}
        assert post_id in snapshots, f"no snapshot for {post_id}"
        assert getattr(snapshots[post_id], figure) is None, f"{post_id}: an omitted {figure} became {getattr(snapshots[post_id], figure)!r}, not None"

    def test_account_metrics_map_the_platform_answer(self) -> None:
        spec = self._metrics_declared()
        if not spec.account:
            pytest.skip("the provider reads no account figures")
        assert self.account_metrics_success and self.expected_account_metrics, (
            "script the platform's real answer for the account's totals: account_metrics_success, expected_account_metrics"
        )
        outcome = self.run(
            call_scripted(
                self.provider, self.account_metrics_success, self.provider.fetch_account_metrics,
                credentials=self.credentials, store=MemoryProviderStore(self.stored),
            )
        )
        assert outcome.error is None, f"fetch_account_metrics raised {outcome.error!r}"
        assert isinstance(outcome.result, AccountMetricSnapshot)
        wanted = {name: self.expected_account_metrics.get(name) for name in ACCOUNT_FIGURES}
        assert outcome.result.figures() == wanted, f"mapped {outcome.result.figures()}, expected {wanted}"

    def test_declarations_are_consistent(self) -> None:
        issues = check_declarations(self.provider)
        assert issues == [], "\n".join(f"{'.'.join(i.field)}: {i.code}: {i.message}" for i in issues)

    def test_sample_credentials_are_valid(self) -> None:
        if self.provider.auth_kind == "credentials":
            assert validate_credentials(self.provider, self.credentials) == []
        missing_required = [f.name for f in _credential_fields(self.provider) if f.required]
        if missing_required:
            issues = validate_credentials(self.provider, {})
            assert {i.field[-1] for i in issues if i.code == "CREDENTIAL_REQUIRED"} == set(missing_required)

    def test_publish_maps_success(self) -> None:
        if self.uses_http:
            assert self.success, "script the platform's real answer to a successful publish in `success`"
        outcome = self.scripted_publish(self.success)
        assert outcome.error is None, f"publish raised {outcome.error!r}"
        assert len(outcome.sent) == len(self.success), f"{len(self.success) - len(outcome.sent)} scripted answers unused"
        result, sent = outcome.result, list(outcome.sent)
        if self.poll_success:
            result, polled = self._poll_to_the_post(result)
            sent += polled
        assert isinstance(result, PublishResult), f"publish returned {result!r}, not a PublishResult"
        assert isinstance(result.platform_post_id, str) and result.platform_post_id
        if self.expected_post_id is not None:
            assert result.platform_post_id == self.expected_post_id
        if self.expected_url is not None:
            assert result.url == self.expected_url
        self.check_published_requests(sent)

    def _poll_to_the_post(self, processing: Any) -> tuple[Any, list[httpx.Request]]:
        """Poll ``processing``'s handle (as the gateway stores it, JSON) against ``poll_success``."""
        assert isinstance(processing, Processing), f"publish returned {processing!r}, not Processing (poll_success is set)"
        if self.expected_stage is not None:
            assert processing.stage == self.expected_stage, f"stage {processing.stage!r}, expected {self.expected_stage!r}"
        handle = jsonlib.loads(jsonlib.dumps(dict(processing.handle)))
        polled = self.run(call_scripted(
            self.provider, self.poll_success, lambda ctx: self.provider.poll(ctx, self.request, handle),
            credentials=self.credentials, store=MemoryProviderStore(self.stored),
        ))
        assert polled.error is None, f"poll raised {polled.error!r}"
        assert len(polled.sent) == len(self.poll_success), f"{len(self.poll_success) - len(polled.sent)} scripted poll answers unused"
        return polled.result, polled.sent

    def test_error_cases_cover_the_taxonomy(self) -> None:
        needed = {RateLimited, TransientError, Rejected}
        if self.provider.auth_kind != "none":
            needed.add(AuthExpired)
        covered = {kind for case in self.error_cases for kind in needed if issubclass(case.raises, kind)}
        missing = sorted(kind.__name__ for kind in needed - covered)
        assert not missing, f"add error_cases scripted with the platform's real answers for: {', '.join(missing)}"

    def test_publish_maps_each_error(self) -> None:
        failures = []
        for case in self.error_cases:
            outcome = self.scripted_publish(case.steps, case=case)
            error = outcome.error
            self.check_error_requests(case, outcome.sent)
            if len(outcome.sent) != len(case.steps):
                failures.append(f"{case.label}: {len(case.steps) - len(outcome.sent)} scripted answers unused")
            elif not isinstance(error, case.raises):
                failures.append(f"{case.label}: expected {case.raises.__name__}, got {error!r} (result {outcome.result!r})")
            elif case.code is not None and error.code != case.code:
                failures.append(f"{case.label}: expected code {case.code}, got {error.code}")
            elif case.retry_after is not None and getattr(error, "retry_after", None) != case.retry_after:
                failures.append(f"{case.label}: expected retry_after {case.retry_after}, got {getattr(error, 'retry_after', None)}")
        assert not failures, "\n".join(failures)

    def test_network_failures_map_to_typed_errors(self) -> None:
        if not self.uses_http:
            outcome = self.scripted_publish([])
            assert outcome.error is None and outcome.sent == [], "a provider without a remote platform sends nothing"
            return
        first = request_line(self.scripted_publish(self.success).sent[0])
        refused = self.scripted_publish([httpx.ConnectError("connection refused")])
        assert isinstance(refused.error, TransientError), f"a refused connection must be TransientError, got {refused.error!r}"
        lost = self.scripted_publish([httpx.ReadTimeout("no answer")])
        if self.publishing_step == 0:
            assert isinstance(lost.error, Unconfirmed), (
                f"no answer after the post was sent must be Unconfirmed (it may have published), got {lost.error!r}"
            )
        else:
            assert isinstance(lost.error, TransientError), (
                f"no answer while preparing published nothing: TransientError (safe to retry), got {lost.error!r}"
            )
        for outcome in (refused, lost):
            lines = [request_line(request) for request in outcome.sent]
            assert lines == [first], f"the failed publish sent {lines}, the successful one starts with {first}"
        if self.publishing_step:
            steps = [*self.success[: self.publishing_step], httpx.ReadTimeout("no answer"), *self.after_lost_answer]
            lost_publish = self.scripted_publish(steps)
            assert isinstance(lost_publish.error, Unconfirmed), (
                f"no answer to the publishing request (success[{self.publishing_step}]) must be Unconfirmed, got {lost_publish.error!r}"
            )
            assert len(lost_publish.sent) == len(steps), f"{len(steps) - len(lost_publish.sent)} scripted answers unused"

    def test_requests_before_the_publishing_one_run_while_preparing(self) -> None:
        """So the gateway's deadline cutting them short is a plain retry, never ``unconfirmed``."""
        if not self.publishing_step:
            pytest.skip("the first request may publish (publishing_step is 0)")
        contexts: list[ProviderContext] = []
        phases: list[bool] = []

        def noting(step: Step) -> Step:
            def answer(request: httpx.Request) -> Any:
                phases.append(contexts[0].phase.preparing)
                return step(request) if callable(step) and not isinstance(step, (Reply, httpx.Response, BaseException)) else step
            return answer

        def operation(ctx: ProviderContext) -> Coroutine[Any, Any, Any]:
            contexts.append(ctx)
            return publish_checked(self.provider, ctx, self.request)

        outcome = self.run(call_scripted(
            self.provider, [noting(step) for step in self.success], operation,
            credentials=self.credentials, store=MemoryProviderStore(self.stored),
        ))
        assert outcome.error is None, f"publish raised {outcome.error!r}"
        expected = [True] * self.publishing_step + [False]
        assert phases[: self.publishing_step + 1] == expected, f"preparing at each request: {phases}, expected {expected}"

    def test_valid_draft_passes(self) -> None:
        assert validate_draft(self.provider, self.valid_draft()) == []
        for draft in self.platform_accepts:
            assert validate_draft(self.provider, draft) == [], f"the platform accepts {draft!r}"

    def test_text_limits_are_enforced_at_the_boundary(self) -> None:
        base = self.valid_draft()
        for limit in self.provider.limits.text_limits:
            # ASCII letters measure the same in every unit, so the boundary is exact in all of them.
            # Only this limit's own issue counts: 3000 letters are also over a 300-grapheme cap.
            at_limit = validate_draft(self.provider, _with(base, text="a" * limit.max_length))
            assert not _too_long_for(at_limit, limit), f"{limit.max_length} {limit.unit.label} must be accepted"
            over = validate_draft(self.provider, _with(base, text="a" * (limit.max_length + 1)))
            too_long = _too_long_for(over, limit)
            assert too_long, f"{limit.max_length + 1} {limit.unit.label} must be refused"
            assert str(limit.max_length + 1) in too_long[0].message and str(limit.max_length) in too_long[0].message

    def test_media_limits_are_enforced(self) -> None:
        limits = self.provider.limits
        base = self.valid_draft()
        if limits.media_required:
            assert "MEDIA_REQUIRED" in _codes(validate_draft(self.provider, _with(base, media=())))
        if not limits.media_kinds:
            image = DraftMedia("image", "image/png", 1024)
            assert "TOO_MANY_MEDIA" in _codes(validate_draft(self.provider, _with(base, media=(image,))))
            return
        kind = sorted(limits.media_kinds)[0]
        one = DraftMedia(kind, sample_media(kind).mime_type, 1024)
        assert "TOO_MANY_MEDIA" in _codes(validate_draft(self.provider, _with(base, media=(one,) * (limits.max_media + 1))))
        for other in sorted({"image", "video", "gif", "document"} - limits.media_kinds):
            foreign = DraftMedia(other, sample_media(other).mime_type, 1024)
            assert "MEDIA_KIND_NOT_SUPPORTED" in _codes(validate_draft(self.provider, _with(base, media=(foreign,))))
        for sized_kind, max_bytes in limits.max_media_bytes.items():
            big = DraftMedia(sized_kind, sample_media(sized_kind).mime_type, max_bytes + 1)
            assert "MEDIA_TOO_LARGE" in _codes(validate_draft(self.provider, _with(base, media=(big,))))

    def test_threads_and_settings_are_enforced(self) -> None:
        base = self.valid_draft()
        parts = self.provider.limits.max_thread_parts
        if parts == 1:
            assert "THREADS_NOT_SUPPORTED" in _codes(validate_draft(self.provider, _with(base, thread=("more",))))
        else:
            assert validate_draft(self.provider, _with(base, thread=("more",) * (parts - 1))) == []
            assert "THREAD_TOO_LONG" in _codes(validate_draft(self.provider, _with(base, thread=("more",) * parts)))
        unknown = dict(base.settings, no_such_setting_anywhere=True)
        assert "UNKNOWN_SETTING" in _codes(validate_draft(self.provider, _with(base, settings=unknown)))
        for setting in self.provider.settings:
            if setting.required and setting.default is None:
                without = {k: v for k, v in base.settings.items() if k != setting.name}
                assert "SETTING_REQUIRED" in _codes(validate_draft(self.provider, _with(base, settings=without)))
            wrong = dict(base.settings, **{setting.name: _an_invalid_value(setting)})
            assert "SETTING_INVALID" in _codes(validate_draft(self.provider, _with(base, settings=wrong)))

    def test_limits_reject_what_the_platform_rejects(self) -> None:
        failures = []
        for case in self.platform_rejects:
            codes = _codes(validate_draft(self.provider, case.draft))
            if case.code not in codes:
                failures.append(f"{case.label}: expected {case.code}, validation reported {sorted(codes) or 'nothing'}")
        assert not failures, "\n".join(failures)

    def test_nothing_is_sent_when_validation_fails(self) -> None:
        invalid = _invalid_request(self.provider, self.request)
        outcome = self.scripted_publish(self.success, invalid)
        assert outcome.sent == [], f"{len(outcome.sent)} request(s) sent for an invalid post"
        assert isinstance(outcome.error, Rejected) and outcome.error.code == "VALIDATION_FAILED", outcome.error


def _too_long_for(issues: list[Issue], limit: TextLimit) -> list[Issue]:
    """The TEXT_TOO_LONG issues that ``limit`` raised (their message names its cap and unit)."""
    cap = f"at most {limit.max_length} {limit.unit.label}"
    return [issue for issue in issues if issue.code == "TEXT_TOO_LONG" and cap in issue.message]


def _with(draft: PostDraft, **changes: Any) -> PostDraft:
    values = {"text": draft.text, "media": draft.media, "settings": draft.settings, "thread": draft.thread, **changes}
    return PostDraft(**values)


def _credential_fields(provider: Provider) -> tuple[Any, ...]:
    return provider.auth if isinstance(provider.auth, tuple) else ()


def _a_valid_value(setting: Any) -> Any:
    return {"boolean": True, "integer": 1, "choice": setting.choices[0] if setting.choices else ""}.get(setting.type, "x")


def _an_invalid_value(setting: Any) -> Any:
    # A value of the wrong type (or outside the choices) for every setting type.
    return {"boolean": "yes", "integer": "one", "choice": "\u2205 not a choice", "string": 42}[setting.type]


def _invalid_request(provider: Provider, request: PublishRequest) -> PublishRequest:
    """``request`` made invalid for ``provider`` in the plainest way its limits allow."""
    limits = provider.limits
    if limits.max_text_length is not None:
        return PublishRequest(**{**_fields(request), "text": "a" * (limits.max_text_length + 1)})
    if limits.max_thread_parts == 1:
        return PublishRequest(**{**_fields(request), "thread": (ThreadPart("more"),)})
    kind = sorted(limits.media_kinds)[0] if limits.media_kinds else "image"
    return PublishRequest(**{**_fields(request), "media": (sample_media(kind),) * (limits.max_media + 1)})


def _fields(request: PublishRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}
