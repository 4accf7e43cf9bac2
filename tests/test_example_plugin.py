"""The example third-party plugin, pip-installed: discovered through its entry point, listed, and
publishing end to end through the gateway's runtime against Slack's real webhook answers."""

import json
import os
import subprocess
import sys

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.plugins import load_plugins
from gateway.runtime import Runtime
from providers import AuthExpired, PublishRequest, RateLimited, Rejected, TransientError, Unconfirmed
from providers.validation import publish_checked
from tests.plugin_packages import EXAMPLE_PLUGIN, pip_install_example

HOOK = "https://hooks.slack.com/services/T0001/B0002/abcdefABCDEF123456"


@pytest.fixture(scope="session")
def example_site(tmp_path_factory):
    target = tmp_path_factory.mktemp("example-plugin-site")
    pip_install_example(target)
    return target


@pytest.fixture
def installed(example_site, monkeypatch):
    monkeypatch.syspath_prepend(str(example_site))
    for name in [m for m in sys.modules if m.startswith("slack_webhook_provider")]:
        monkeypatch.delitem(sys.modules, name)  # import the installed copy, not a source checkout
    return example_site


def test_discovered_through_its_entry_point(installed):
    registry = load_plugins()
    (info,) = [p for p in registry.plugins if p.name == "slack-webhook"]
    assert (info.version, info.distribution, info.providers, info.error) == (
        "0.1.0", "socialgate-slack-webhook", ("slack-webhook",), None,
    )
    provider = registry.get("slack-webhook")
    assert str(installed) in sys.modules[type(provider).__module__].__file__


def test_listed_by_the_cli(installed):
    listed = json.loads(CliRunner().invoke(app, ["plugins", "list", "--json"]).stdout)
    assert {"name": "slack-webhook", "version": "0.1.0", "distribution": "socialgate-slack-webhook",
            "hooks": ["register_providers"], "providers": ["slack-webhook"], "error": None} in listed
    table = CliRunner().invoke(app, ["providers"], env={"COLUMNS": "250"}).stdout
    assert "Slack (incoming webhook)" in table and "40000 characters" in table


class SlackScript:
    """A MockTransport answering each webhook POST with the next scripted Slack answer."""

    def __init__(self):
        self.answers: list = []
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
async def gateway(installed, settings):
    script = SlackScript()
    runtime = Runtime(settings, http_transport=httpx.MockTransport(script))
    await runtime.start()
    yield runtime, script
    await runtime.stop()


async def test_publishes_end_to_end_and_maps_every_slack_answer(gateway):
    runtime, script = gateway
    provider = runtime.plugins.get("slack-webhook")
    ctx = runtime.provider_context("slack-webhook", "acct_slack", {"webhook_url": HOOK})
    request = PublishRequest(text="Shipped :rocket:", idempotency_key="tgt_e2e", settings={"unfurl_links": True})

    script.answers.append(httpx.Response(200, text="ok"))
    result = await publish_checked(provider, ctx, request)
    assert result.platform_post_id == "B0002:tgt_e2e"
    (sent,) = script.sent
    assert (sent.method, str(sent.url)) == ("POST", HOOK)
    assert json.loads(sent.content) == {"text": "Shipped :rocket:", "unfurl_links": True, "unfurl_media": True}
    assert sent.headers["user-agent"].startswith("socialgate")  # the runtime's shared client

    cases = [
        (httpx.Response(400, text="invalid_payload"), Rejected, "INVALID_PAYLOAD"),
        (httpx.Response(403, text="action_prohibited"), Rejected, "ACTION_PROHIBITED"),
        (httpx.Response(403, text="invalid_token"), AuthExpired, "INVALID_TOKEN"),
        (httpx.Response(404, text="no_service"), AuthExpired, "NO_SERVICE"),
        (httpx.Response(410, text="channel_is_archived"), Rejected, "CHANNEL_IS_ARCHIVED"),
        (httpx.Response(429, text="rate_limited", headers={"Retry-After": "17"}), RateLimited, "RATE_LIMITED"),
        (httpx.Response(500, text="rollup_error"), TransientError, "ROLLUP_ERROR"),
        (httpx.Response(502, text=""), TransientError, "HTTP_502"),
        (httpx.ReadTimeout("no answer"), Unconfirmed, "UNCONFIRMED"),
    ]
    for answer, error, code in cases:
        script.answers.append(answer)
        with pytest.raises(error) as raised:
            await publish_checked(provider, ctx, request)
        assert raised.value.code == code
    assert raised.type is Unconfirmed
    script.answers.append(httpx.Response(429, headers={"Retry-After": "17"}))
    with pytest.raises(RateLimited) as limited:
        await publish_checked(provider, ctx, request)
    assert limited.value.retry_after == 17


async def test_too_long_text_never_reaches_slack(gateway):
    runtime, script = gateway
    provider = runtime.plugins.get("slack-webhook")
    ctx = runtime.provider_context("slack-webhook", "acct_slack", {"webhook_url": HOOK})
    with pytest.raises(Rejected) as raised:
        await publish_checked(provider, ctx, PublishRequest(text="x" * 40_001, idempotency_key="tgt_long"))
    assert raised.value.code == "VALIDATION_FAILED"
    assert "40001 characters" in raised.value.message
    assert script.sent == []


def test_passes_its_own_conformance_tests_from_its_own_directory(installed):
    environment = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], cwd=EXAMPLE_PLUGIN, capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout
