"""The SDK's public surface: names, hook documentation, HTTP error mapping, and its independence."""

import ast
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

import providers
from providers import AuthExpired, RateLimited, Rejected, TransientError, Unconfirmed, hookspecs
from providers.errors import outcome_of
from providers.http import raise_for_response, retry_after_seconds, send
from providers.testing import ScriptedTransport, make_context
from tests.plugin_packages import EXAMPLE_PLUGIN

PROMISED = (
    "Provider Capabilities Limits TextUnit OAuth2Spec CredentialField SettingField ProviderContext PublishRequest "
    "PublishResult MetricSnapshot TokenSet AccountProfile RateLimited TransientError AuthExpired Rejected Unconfirmed "
    "ProviderError hookimpl"
).split()


def test_the_promised_names_are_exported():
    assert set(PROMISED) <= set(providers.__all__)
    for name in providers.__all__:
        assert getattr(providers, name) is not None


@pytest.mark.parametrize("hook", ["register_providers", "validate_post", "on_event"])
def test_every_hookspec_documents_when_arguments_and_return(hook):
    function = getattr(hookspecs, hook)
    doc = function.__doc__ or ""
    assert "Called" in doc and ("Return" in doc or "return value" in doc)
    for argument in function.__code__.co_varnames[: function.__code__.co_argcount]:
        assert f"``{argument}``" in doc, f"{hook} does not document {argument}"


def test_sdk_and_kit_import_nothing_else_of_socialgate():
    code = "import sys, providers, providers.testing; assert not [m for m in sys.modules if m.split('.')[0] in ('gateway', 'schema', 'plugins')]"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_example_plugin_imports_only_the_sdk():
    for path in EXAMPLE_PLUGIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in ("gateway", "schema", "plugins"), f"{path} imports {name}"


def response(status, text="", headers=None):
    return httpx.Response(status, text=text, headers=headers or {}, request=httpx.Request("POST", "https://p.example"))


@pytest.mark.parametrize(
    "status, error, code",
    [
        (429, RateLimited, "RATE_LIMITED"),
        (401, AuthExpired, "AUTH_EXPIRED"),
        (408, TransientError, "HTTP_408"),
        (503, TransientError, "HTTP_503"),
        (400, Rejected, "HTTP_400"),
        (422, Rejected, "HTTP_422"),
    ],
)
def test_raise_for_response_maps_statuses(status, error, code):
    with pytest.raises(error) as raised:
        raise_for_response(response(status, "body"))
    assert (raised.value.code, raised.value.http_status, raised.value.raw) == (code, status, "body")
    raise_for_response(response(201))


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b'{"error": "InvalidToken"}', {"error": "InvalidToken"}), (b"<html>502 Bad Gateway</html>", None), (b"[1, 2]", None), (b"", None)],
)
def test_json_object_reads_an_error_body_without_raising(content, expected):
    from providers.http import json_object

    assert json_object(httpx.Response(502, content=content)) == expected


def test_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(response(429, headers={"Retry-After": "120"})) == 120
    assert retry_after_seconds(response(429, headers={"Retry-After": "Thu, 15 Jan 2026 12:01:30 GMT"}), now) == 90
    assert retry_after_seconds(response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(response(429)) is None


@pytest.mark.parametrize(
    "failure, publishes, error",
    [
        (httpx.ConnectError("refused"), True, TransientError),
        (httpx.ReadTimeout("slow"), True, Unconfirmed),
        (httpx.ReadTimeout("slow"), False, TransientError),
        (httpx.RemoteProtocolError("dropped"), True, Unconfirmed),
    ],
)
async def test_send_maps_network_failures(failure, publishes, error):
    class Plain(providers.Provider):
        id = "plain"
        name = "Plain"

    ctx = make_context(Plain(), ScriptedTransport([failure]))
    with pytest.raises(error):
        await send(ctx, "POST", "https://p.example/post", publishes=publishes)
    await ctx.http.aclose()


class _Plain(providers.Provider):
    id = "plain"
    name = "Plain"


async def test_a_publishing_request_is_refused_inside_a_preparing_phase():
    transport = ScriptedTransport([])
    ctx = make_context(_Plain(), transport)
    with ctx.preparing(), pytest.raises(RuntimeError, match="preparing"):
        await send(ctx, "POST", "https://p.example/post", publishes=True)
    assert transport.sent == [] and ctx.phase.preparing is False
    await ctx.http.aclose()


async def test_the_phase_tells_a_call_cut_short_while_preparing_from_one_cut_short_later():
    import asyncio

    async def call(ctx, waiting: asyncio.Event, prepare_forever: bool) -> None:
        with ctx.preparing():
            await asyncio.sleep(0)
        if prepare_forever:
            with ctx.preparing():  # X processing a video
                waiting.set()
                await asyncio.Event().wait()
        waiting.set()
        await asyncio.Event().wait()  # the post went out and no answer comes

    for prepare_forever, expected in ((True, True), (False, False)):
        ctx, waiting = make_context(_Plain(), ScriptedTransport([])), asyncio.Event()
        task = asyncio.create_task(call(ctx, waiting, prepare_forever))
        await asyncio.wait_for(waiting.wait(), 10)
        task.cancel()  # as the engine's deadline does
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (ctx.phase.interrupted_while_preparing, ctx.phase.preparing) == (expected, False)
        await ctx.http.aclose()
    failing = make_context(_Plain(), ScriptedTransport([]))
    with pytest.raises(TransientError), failing.preparing():  # an error, not a cut: nothing to note
        raise TransientError("upload failed")
    assert failing.phase.interrupted_while_preparing is False
    await failing.http.aclose()


def test_outcome_words_follow_the_error_class():
    assert [outcome_of(e) for e in (RateLimited(5), TransientError(), AuthExpired(), Rejected("X", "x"), Unconfirmed())] == [
        "rate_limited", "transient", "auth_expired", "rejected", "unconfirmed",
    ]
    with pytest.raises(ValueError):
        RateLimited(-1)


def test_scripted_transport_fails_on_unscripted_requests():
    import asyncio

    async def go():
        async with httpx.AsyncClient(transport=ScriptedTransport([])) as client:
            await client.get("https://p.example/x")

    with pytest.raises(AssertionError, match="unscripted request #1: GET https://p.example/x"):
        asyncio.run(go())


def test_the_kit_hands_a_provider_the_records_its_class_says_are_stored():
    import asyncio

    from providers import PublishResult
    from providers.store import MemoryProviderStore
    from providers.testing import ErrorCase, ProviderConformance

    seen = []

    class Remembers(providers.Provider):
        id = "remembers"
        name = "Remembers"

        async def publish(self, ctx, request):
            seen.append(await ctx.store.get("session", "current"))
            return PublishResult("1")

    class Kit(ProviderConformance):
        provider = Remembers()
        uses_http = False
        stored = {("session", "current"): {"token": "kept"}}

    kit = Kit()
    assert kit.scripted_publish([]).result == PublishResult("1")
    assert kit.scripted_publish([], case=ErrorCase("own", [], Rejected, stored={})).result == PublishResult("1")
    assert seen == [{"token": "kept"}, None]
    # The store copies what it is given: a provider changing its records cannot change the class's.
    original = {("k", "1"): {"a": [1]}}
    store = MemoryProviderStore(original)
    record = asyncio.run(store.get("k", "1"))
    record["a"].append(2)
    assert asyncio.run(store.get("k", "1")) == {"a": [1]} and original[("k", "1")] == {"a": [1]}
