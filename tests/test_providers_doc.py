"""docs/providers.md's table is the registry's: ``socialgate providers --builtin --format markdown``."""

import re
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from gateway.plugins import builtin_provider_ids, load_plugins, provider_row

DOC = Path(__file__).parent.parent / "docs" / "providers.md"
REGENERATE = ["providers", "--builtin", "--format", "markdown"]


def generated() -> str:
    result = CliRunner().invoke(app, REGENERATE)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_table_in_the_doc_is_the_commands_output():
    match = re.search(r"<!-- providers:start -->\n(.*?)<!-- providers:end -->", DOC.read_text(), re.S)
    assert match, "docs/providers.md lost its <!-- providers:start/end --> markers"
    assert match.group(1) == generated(), "docs/providers.md is stale: regenerate it with `socialgate " + " ".join(REGENERATE) + "`"


def test_the_table_lists_every_built_in_platform_once():
    registry = load_plugins(None)
    rows = [line.split(" | ")[0].removeprefix("| ") for line in generated().splitlines()[2:]]
    assert rows == sorted(builtin_provider_ids(registry)) and len(rows) == len(set(rows))
    assert {"wordpress", "wordpress_com", "google_business", "snapchat"} <= set(rows)


def test_a_row_says_limits_quotas_auth_and_approval():
    providers = load_plugins(None).providers
    google = provider_row(providers["google_business"])
    assert (google["text"], google["media"], google["quotas"], google["metrics"]) == ("1500 characters", "1 (image)", "10 per 60 s", "account: posts")
    assert google["approval"].startswith("Google must grant") and google["auth"] == "oauth2"
    assert provider_row(providers["wordpress"])["auth"] == "credentials: site_url, username, application_password"
    snap = provider_row(providers["snapchat"])
    assert snap["media"] == "1 (image, video), required" and "allow-list" in snap["approval"]
    assert provider_row(providers["mastodon"])["approval"].startswith("None: each instance registers the app")


def test_every_built_in_provider_says_what_its_platform_must_approve():
    registry = load_plugins(None)
    undeclared = sorted(i for i in builtin_provider_ids(registry) if not registry.providers[i].approval)
    assert undeclared == [], "declare `approval` (\"None: <why>\" when nothing is): " + ", ".join(undeclared)
    needs_nothing = {i for i in builtin_provider_ids(registry) if registry.providers[i].approval.startswith("None")}
    assert needs_nothing == {"apple_search_ads", "bluesky", "discord", "dribbble", "mastodon", "sandbox", "telegram", "wordpress", "wordpress_com"}
    for meta in ("facebook", "instagram", "instagram_business", "threads", "meta_ads"):
        assert registry.providers[meta].approval.startswith("Meta App Review"), meta
    assert "audit" in registry.providers["tiktok"].approval and "SELF_ONLY" in registry.providers["tiktok"].approval
    assert "Community Management API" in registry.providers["linkedin_page"].approval
    assert "Standard access" in registry.providers["pinterest"].approval


def test_a_provider_that_does_not_say_reads_not_declared():
    from plugins.sandbox import Sandbox

    class Silent(Sandbox):
        approval = ""

    assert provider_row(Silent())["approval"] == "not declared"


def test_quotas_read_as_count_per_period_with_units_and_scope():
    from gateway.plugins import quota_label
    from providers import Quota

    assert quota_label(Quota(50, 86_400)) == "50 per 24 h"
    assert quota_label(Quota(10_000, 86_400, "app", cost=1_600)) == "10000 units per 24 h per app, 1600 a post"
    assert quota_label(Quota(5, 90)) == "5 per 90 s"


def test_a_pipe_in_a_cell_cannot_break_the_table():
    from gateway.plugins import providers_markdown
    from plugins.sandbox import Sandbox

    class Piped(Sandbox):
        name = "Left | right"

    assert "Left \\| right" in providers_markdown([Piped()])


def test_an_unknown_format_is_refused_with_a_code():
    result = CliRunner().invoke(app, ["providers", "--format", "html"])
    assert result.exit_code == 2 and "FORMAT_INVALID" in result.output


async def test_the_providers_query_says_what_needs_approval_and_whether_oauth_is_configured(api, org):
    body = await api.graphql("{ providers { id approval configured } }", key=org.secret)
    providers = {p["id"]: p for p in body["data"]["providers"]}
    assert providers["snapchat"]["approval"].startswith("Snap must allow-list")
    assert providers["wordpress"]["approval"].startswith("None:") and providers["wordpress"]["configured"] is True  # a credentials form
    assert providers["mastodon"]["approval"].startswith("None:")
    for oauth in ("google_business", "snapchat", "wordpress_com"):
        assert providers[oauth]["configured"] is False  # until SOCIALGATE_OAUTH_<ID>_CLIENT_ID and _SECRET are set
