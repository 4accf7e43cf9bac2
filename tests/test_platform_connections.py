"""Pinterest, Reddit, Slack and Dribbble through the existing OAuth connection flow: each is
``configured: false`` until its client id and secret are set, then ``startConnection`` sends the
user to the platform's own authorize page with the provider's scopes."""

from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.settings import load_settings
from tests.oauth_flow import allow, start

CONFIGURED = {"slack": ("123.456", "slack-s3cret"), "reddit": ("r3ddit-app", "reddit-s3cret")}


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for provider, (client_id, secret) in CONFIGURED.items():
        monkeypatch.setenv(f"SOCIALGATE_OAUTH_{provider.upper()}_CLIENT_ID", client_id)
        monkeypatch.setenv(f"SOCIALGATE_OAUTH_{provider.upper()}_CLIENT_SECRET", secret)
    return load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path))


async def test_each_is_unconfigured_until_its_client_is_set(api, org):
    listed = await api.graphql("{ providers { id configured auth { kind oauth2 { callbackUrl } } } }", key=org.secret)
    providers = {p["id"]: p for p in listed["data"]["providers"]}
    assert {name: providers[name]["configured"] for name in ("pinterest", "reddit", "slack", "dribbble")} == {
        "pinterest": False, "reddit": True, "slack": True, "dribbble": False,
    }
    assert {providers[name]["auth"]["kind"] for name in ("pinterest", "reddit", "slack", "dribbble")} == {"oauth2"}
    await allow(api, org.secret)
    for name in ("pinterest", "dribbble"):
        payload = await start(api, org.secret, provider=name)
        assert [e["code"] for e in payload["userErrors"]] == ["OAUTH_NOT_CONFIGURED"]
        assert f"SOCIALGATE_OAUTH_{name.upper()}_CLIENT_ID" in payload["userErrors"][0]["message"]


async def test_start_connection_sends_the_user_to_the_platform_with_its_scopes(api, org):
    await allow(api, org.secret)
    slack = await start(api, org.secret, provider="slack")
    assert slack["userErrors"] == [] and slack["authorizeUrl"].startswith("https://slack.com/oauth/v2/authorize?")
    query = parse_qs(urlsplit(slack["authorizeUrl"]).query)
    assert query["client_id"] == ["123.456"] and query["scope"] == ["channels:read,groups:read,chat:write,channels:join,files:write"]
    assert query["redirect_uri"] == [f"{api.runtime.settings.base_url}/oauth/slack/callback"]
    assert "slack-s3cret" not in slack["authorizeUrl"]
    reddit = await start(api, org.secret, provider="reddit")
    query = parse_qs(urlsplit(reddit["authorizeUrl"]).query)
    assert reddit["authorizeUrl"].startswith("https://www.reddit.com/api/v1/authorize?")
    assert (query["duration"], query["scope"]) == (["permanent"], ["identity submit flair read history edit"])
