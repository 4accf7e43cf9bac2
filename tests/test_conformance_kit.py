"""The conformance kit judged on providers that are wrong: it must fail them loudly.

A third party trusts a green kit. These providers map every answer correctly but send the wrong
requests, so a kit that only looked at the typed results would pass them.
"""

import asyncio

import httpx
import pytest

import providers
from providers import PublishResult, RateLimited, Rejected, TransientError
from providers.http import raise_for_response, send
from providers.testing import ErrorCase, ProviderConformance, UnscriptedRequest, call_scripted, reply, request_line

POST_URL = "https://p.example/v1/posts"


class Poster(providers.Provider):
    """Posts once to ``POST_URL``; maps the answer with the SDK's helpers. The reference."""

    id = "poster"
    name = "Poster"

    async def publish(self, ctx, request):
        response = await send(ctx, "POST", self.url(), publishes=True, json={"text": request.text})
        raise_for_response(response)
        return PublishResult(response.json()["id"])

    def url(self) -> str:
        return POST_URL


class ForgetfulPoster(Poster):
    """Posts to the right URL once, then to a stale one: state leaking from one call to the next."""

    def __init__(self) -> None:
        self.calls = 0

    def url(self) -> str:
        self.calls += 1
        return POST_URL if self.calls == 1 else "https://p.example/v0/posts"


class StatusCheckingPoster(Poster):
    """After a refusal, asks an endpoint the successful publish never touches."""

    async def publish(self, ctx, request):
        try:
            return await super().publish(ctx, request)
        except RateLimited:
            await send(ctx, "GET", "https://p.example/v1/status")
            raise


class SwallowingPoster(Poster):
    """Retries once, and turns anything that goes wrong into a rejection (``except Exception``)."""

    async def publish(self, ctx, request):
        try:
            response = await send(ctx, "POST", POST_URL, publishes=True, json={"text": request.text})
            if response.status_code >= 500:
                response = await send(ctx, "POST", POST_URL, publishes=True, json={"text": request.text})
            raise_for_response(response)
            return PublishResult(response.json()["id"])
        except Exception as error:
            raise Rejected("SWALLOWED", str(error)) from error


def kit_for(plugin, cases=()):
    class Kit(ProviderConformance):
        provider = plugin
        success = [reply(200, json={"id": "1"})]
        error_cases = cases

        def check_published_requests(self, sent):
            assert [request_line(r) for r in sent] == [f"POST {POST_URL}"]

    return Kit()


RATE_LIMITED = ErrorCase("429", [reply(429, json={}, headers={"Retry-After": "9"}), reply(200, json={})], RateLimited)


def test_the_reference_provider_passes_every_check_it_is_given():
    kit = kit_for(Poster(), [ErrorCase("429", [reply(429, json={}, headers={"Retry-After": "9"})], RateLimited, retry_after=9)])
    kit.test_publish_maps_success()
    kit.test_publish_maps_each_error()
    kit.test_network_failures_map_to_typed_errors()


def test_network_failure_checks_look_at_what_was_sent():
    kit = kit_for(ForgetfulPoster())
    with pytest.raises(AssertionError, match="the failed publish sent \\['POST https://p.example/v0/posts'\\]"):
        kit.test_network_failures_map_to_typed_errors()


def test_error_checks_refuse_a_request_the_successful_publish_never_sends():
    kit = kit_for(StatusCheckingPoster(), [RATE_LIMITED])
    with pytest.raises(AssertionError, match="429: sent \\['GET https://p.example/v1/status'\\], which the successful"):
        kit.test_publish_maps_each_error()


def test_error_checks_compare_with_the_requests_a_case_declares():
    declared = ErrorCase("429", RATE_LIMITED.steps, RateLimited, sends=[f"POST {POST_URL}"])
    with pytest.raises(AssertionError, match="sent .*v1/status.*expected \\['POST https://p.example/v1/posts'\\]"):
        kit_for(StatusCheckingPoster(), [declared]).test_publish_maps_each_error()
    allowed = ErrorCase("429", RATE_LIMITED.steps, RateLimited, sends=[f"POST {POST_URL}", "GET https://p.example/v1/status"])
    kit_for(StatusCheckingPoster(), [allowed]).test_publish_maps_each_error()


def test_error_checks_refuse_scripted_answers_left_unused():
    kit = kit_for(Poster(), [RATE_LIMITED])
    with pytest.raises(AssertionError, match="429: 1 scripted answers unused"):
        kit.test_publish_maps_each_error()


def test_an_unscripted_request_fails_even_when_the_provider_swallows_it():
    """The retry hits the end of the script; the provider's ``except Exception`` must not hide it."""
    case = ErrorCase("503", [reply(503, text="busy")], TransientError)
    kit = kit_for(SwallowingPoster(), [case])
    with pytest.raises(UnscriptedRequest, match="unscripted request #2: POST https://p.example/v1/posts"):
        kit.test_publish_maps_each_error()
    with pytest.raises(UnscriptedRequest):
        asyncio.run(call_scripted(SwallowingPoster(), [reply(503)], lambda ctx: SwallowingPoster().publish(ctx, kit.request)))


def test_an_unscripted_request_is_not_an_outcome_even_when_it_escapes():
    async def two_requests(ctx):
        await ctx.http.get("https://p.example/a")
        await ctx.http.get("https://p.example/b")

    with pytest.raises(UnscriptedRequest, match="#2: GET https://p.example/b"):
        asyncio.run(call_scripted(Poster(), [reply(200)], two_requests))


def test_platform_failures_stay_outcomes():
    async def refused(ctx):
        await ctx.http.get("https://p.example/a")

    outcome = asyncio.run(call_scripted(Poster(), [httpx.ConnectError("refused")], refused))
    assert isinstance(outcome.error, httpx.ConnectError)
    assert [request_line(r) for r in outcome.sent] == ["GET https://p.example/a"]


# --- metrics ---------------------------------------------------------------------------------

STATS_URL = "https://p.example/v1/stats"
STATS = {"posts": [{"id": "1", "likes": 4, "replies": 2}, {"id": "2", "likes": 0, "replies": 5}]}
STATS_WITHOUT_LIKES = {"posts": [{"id": "1", "replies": 2}, {"id": "2", "likes": 0, "replies": 5}]}


class CountingPoster(Poster):
    """Reads likes and comments in one batched request; an absent counter stays None. The reference."""

    capabilities = providers.Capabilities(metrics=True)
    metrics = providers.MetricsSpec(post=("likes", "comments"), account=("followers",), batch_size=25)

    async def fetch_metrics(self, ctx, ids):
        response = await send(ctx, "GET", STATS_URL, params={"ids": ",".join(ids)})
        raise_for_response(response)
        return [self.snapshot(ctx, post) for post in response.json()["posts"]]

    def snapshot(self, ctx, post):
        return providers.MetricSnapshot(
            platform_post_id=post["id"], captured_at=ctx.now(),
            likes=providers.reported(post.get("likes")), comments=providers.reported(post.get("replies")),
        )

    async def fetch_account_metrics(self, ctx):
        response = await send(ctx, "GET", "https://p.example/v1/me")
        return providers.AccountMetricSnapshot(captured_at=ctx.now(), followers=response.json().get("followers"))


class ZeroFillingCounter(CountingPoster):
    """Reports a counter the platform left out as 0: the bug the kit exists to catch."""

    def snapshot(self, ctx, post):
        return providers.MetricSnapshot(
            platform_post_id=post["id"], captured_at=ctx.now(), likes=post.get("likes", 0), comments=post.get("replies", 0)
        )


class OverReportingCounter(CountingPoster):
    """Fills in views although its spec does not declare them."""

    def snapshot(self, ctx, post):
        return providers.MetricSnapshot(
            platform_post_id=post["id"], captured_at=ctx.now(), views=0,
            likes=providers.reported(post.get("likes")), comments=providers.reported(post.get("replies")),
        )


def metrics_kit_for(plugin):
    class Kit(ProviderConformance):
        provider = plugin
        metrics_ids = ["1", "2"]
        metrics_success = [reply(200, json=STATS)]
        expected_metrics = {"1": {"likes": 4, "comments": 2}, "2": {"likes": 0, "comments": 5}}
        metrics_omitting = [reply(200, json=STATS_WITHOUT_LIKES)]
        omitted_figure = ("1", "likes")
        account_metrics_success = [reply(200, json={"followers": 12})]
        expected_account_metrics = {"followers": 12}

    return Kit()


def test_the_metrics_checks_pass_a_provider_that_keeps_null_apart_from_zero():
    kit = metrics_kit_for(CountingPoster())
    kit.test_declarations_are_consistent()
    kit.test_metrics_map_the_platform_answer()
    kit.test_a_counter_the_platform_omits_is_none_not_zero()
    kit.test_account_metrics_map_the_platform_answer()


def test_the_metrics_checks_fail_a_provider_that_turns_an_omitted_counter_into_zero():
    kit = metrics_kit_for(ZeroFillingCounter())
    kit.test_metrics_map_the_platform_answer()  # every counter present: nothing to see
    with pytest.raises(AssertionError, match="an omitted likes became 0, not None"):
        kit.test_a_counter_the_platform_omits_is_none_not_zero()


def test_the_metrics_checks_fail_a_figure_reported_but_not_declared():
    with pytest.raises(AssertionError, match="views"):
        metrics_kit_for(OverReportingCounter()).test_metrics_map_the_platform_answer()


def test_the_metrics_checks_demand_a_script_from_a_provider_that_declares_metrics():
    class Unscripted(ProviderConformance):
        provider = CountingPoster()

    with pytest.raises(AssertionError, match="script an answer that leaves one counter out"):
        Unscripted().test_a_counter_the_platform_omits_is_none_not_zero()
    with pytest.raises(AssertionError, match="script the platform's real metrics answer"):
        Unscripted().test_metrics_map_the_platform_answer()


@pytest.mark.parametrize(
    ("spec", "capable", "code"),
    [
        (None, True, "MISSING_METRICS_SPEC"),
        (providers.MetricsSpec(post=("likes",)), False, "UNDECLARED_OPERATION"),
        (providers.MetricsSpec(post=("impressions",)), True, "INVALID_METRICS_SPEC"),
        (providers.MetricsSpec(post=("likes",), batch_size=0), True, "INVALID_METRICS_SPEC"),
    ],
)
def test_declarations_check_the_metrics_spec(spec, capable, code):
    class Declared(CountingPoster):
        capabilities = providers.Capabilities(metrics=capable)
        metrics = spec

    if not capable:
        Declared.fetch_metrics = providers.Provider.fetch_metrics
        Declared.fetch_account_metrics = providers.Provider.fetch_account_metrics
    from providers.validation import check_declarations

    assert code in {issue.code for issue in check_declarations(Declared())}


# --- processing ------------------------------------------------------------------------------

CONTAINERS_URL = "https://p.example/v1/containers"


class ContainerPoster(Poster):
    """Creates a media container, answers Processing, and publishes it once a poll finds it FINISHED. The reference."""

    capabilities = providers.Capabilities(processing=True)

    async def publish(self, ctx, request):
        response = await send(ctx, "POST", CONTAINERS_URL, json={"text": request.text})
        raise_for_response(response)
        return providers.Processing(handle={"container": response.json()["id"]}, stage="container")

    async def poll(self, ctx, request, handle):
        response = await send(ctx, "GET", f"{CONTAINERS_URL}/{handle['container']}")
        raise_for_response(response)
        status = response.json()["status"]
        if status == "ERROR":
            raise self.failed()
        if status != "FINISHED":
            return providers.Processing(handle=handle, stage="container")
        published = await send(ctx, "POST", POST_URL, publishes=True, json={"container": handle["container"]})
        raise_for_response(published)
        return PublishResult(published.json()["id"])

    def failed(self):
        return Rejected("CONTAINER_ERROR", "the platform could not process the media")


class FearfulContainerPoster(ContainerPoster):
    """Calls a container in ERROR a lost answer: the target would end unconfirmed though nothing was published."""

    def failed(self):
        return providers.Unconfirmed("the container failed; who knows")


def processing_kit_for(plugin):
    class Kit(ProviderConformance):
        provider = plugin
        processing_publish = [reply(200, json={"id": "c1"})]
        processing_polls = [[reply(200, json={"status": "IN_PROGRESS"})], [reply(200, json={"status": "FINISHED"}), reply(200, json={"id": "p1"})]]
        processing_expected_post_id = "p1"
        processing_failed = [reply(200, json={"status": "ERROR"})]

    return Kit()


def test_the_processing_checks_pass_a_provider_that_polls_its_container():
    kit = processing_kit_for(ContainerPoster())
    kit.test_processing_publish_then_poll_rounds()
    kit.test_a_failed_container_is_rejected_never_unconfirmed()


def test_the_processing_checks_fail_a_container_error_called_unconfirmed():
    kit = processing_kit_for(FearfulContainerPoster())
    kit.test_processing_publish_then_poll_rounds()
    with pytest.raises(AssertionError, match="a failed container must raise Rejected"):
        kit.test_a_failed_container_is_rejected_never_unconfirmed()


def test_the_processing_checks_fail_a_poll_that_never_finishes():
    kit = processing_kit_for(ContainerPoster())
    kit.processing_polls = [[reply(200, json={"status": "IN_PROGRESS"})], [reply(200, json={"status": "IN_PROGRESS"})]]
    with pytest.raises(AssertionError, match="poll 2 answered .*expected a PublishResult"):
        kit.test_processing_publish_then_poll_rounds()


def test_the_processing_checks_demand_a_script_from_a_provider_that_declares_processing():
    class Unscripted(ProviderConformance):
        provider = ContainerPoster()

    with pytest.raises(AssertionError, match="processing_publish"):
        Unscripted().test_processing_publish_then_poll_rounds()
    with pytest.raises(pytest.skip.Exception):
        processing_kit_for(Poster()).test_processing_publish_then_poll_rounds()


def test_a_provider_whose_poll_has_no_failure_to_find_says_why_instead():
    kit = processing_kit_for(ContainerPoster())
    kit.processing_failed = []
    with pytest.raises(AssertionError, match="processing_failure_unseen"):
        kit.test_a_failed_container_is_rejected_never_unconfirmed()
    kit.processing_failure_unseen = "the platform reports failures elsewhere"
    with pytest.raises(pytest.skip.Exception, match="reports failures elsewhere"):
        kit.test_a_failed_container_is_rejected_never_unconfirmed()
    kit.processing_failed = [reply(200, json={"status": "ERROR"})]
    with pytest.raises(AssertionError, match="not both"):
        kit.test_a_failed_container_is_rejected_never_unconfirmed()


def polling_kit_for(plugin, answers):
    """A publish that always answers Processing: its success is the publish, then a poll against ``answers``."""

    class Kit(ProviderConformance):
        provider = plugin
        success = [reply(200, json={"id": "c1"})]
        poll_success = answers
        expected_stage = "container"
        expected_post_id = "p1"

        def check_published_requests(self, sent):
            assert [request_line(r) for r in sent] == [f"POST {CONTAINERS_URL}", f"GET {CONTAINERS_URL}/c1", f"POST {POST_URL}"]

    return Kit()


def test_the_success_check_polls_a_publish_that_answers_processing_to_its_post():
    polling_kit_for(ContainerPoster(), [reply(200, json={"status": "FINISHED"}), reply(200, json={"id": "p1"})]).test_publish_maps_success()


def test_the_success_check_fails_a_poll_that_never_reaches_the_post():
    kit = polling_kit_for(ContainerPoster(), [reply(200, json={"status": "IN_PROGRESS"})])
    with pytest.raises(AssertionError, match="not a PublishResult"):
        kit.test_publish_maps_success()
    kit.expected_stage = "uploading"
    with pytest.raises(AssertionError, match="stage 'container'"):
        kit.test_publish_maps_success()


class PreparingPoster(Poster):
    """Makes a container while preparing, then publishes it in one call: the publishing request is the second."""

    async def publish(self, ctx, request):
        with ctx.preparing():
            container = await send(ctx, "POST", CONTAINERS_URL, json={"text": request.text})
            raise_for_response(container)
        response = await send(ctx, "POST", POST_URL, publishes=True, json={"container": container.json()["id"]})
        raise_for_response(response)
        return PublishResult(response.json()["id"])


class CarelessPreparingPoster(PreparingPoster):
    """Makes its container outside ``ctx.preparing()``: a deadline there would leave the target unconfirmed."""

    async def publish(self, ctx, request):
        container = await send(ctx, "POST", CONTAINERS_URL, json={"text": request.text})
        raise_for_response(container)
        response = await send(ctx, "POST", POST_URL, publishes=True, json={"container": container.json()["id"]})
        raise_for_response(response)
        return PublishResult(response.json()["id"])


class CallsEveryTimeoutUnconfirmed(PreparingPoster):
    """Marks the container request as publishing too: a lost answer there would be Unconfirmed."""

    async def publish(self, ctx, request):
        container = await send(ctx, "POST", CONTAINERS_URL, publishes=True, json={"text": request.text})
        raise_for_response(container)
        return PublishResult((await send(ctx, "POST", POST_URL, publishes=True, json={})).json()["id"])


def preparing_kit_for(plugin):
    class Kit(ProviderConformance):
        provider = plugin
        success = [reply(200, json={"id": "c1"}), reply(200, json={"id": "p1"})]
        publishing_step = 1

    return Kit()


def test_the_network_and_phase_checks_pass_a_provider_that_prepares_before_publishing():
    kit = preparing_kit_for(PreparingPoster())
    kit.test_network_failures_map_to_typed_errors()
    kit.test_requests_before_the_publishing_one_run_while_preparing()


def test_the_phase_check_fails_preparing_requests_made_outside_the_preparing_phase():
    kit = preparing_kit_for(CarelessPreparingPoster())
    kit.test_network_failures_map_to_typed_errors()
    with pytest.raises(AssertionError, match="preparing at each request"):
        kit.test_requests_before_the_publishing_one_run_while_preparing()


def test_the_network_check_fails_a_lost_answer_while_preparing_called_unconfirmed():
    with pytest.raises(AssertionError, match="no answer while preparing published nothing"):
        preparing_kit_for(CallsEveryTimeoutUnconfirmed()).test_network_failures_map_to_typed_errors()
