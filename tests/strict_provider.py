"""A deliberately strict provider for API tests: tight limits, a required setting, a secret form."""

from __future__ import annotations

from types import SimpleNamespace

from providers import (
    AccountProfile,
    Capabilities,
    CredentialField,
    Limits,
    Provider,
    PublishResult,
    Rejected,
    SettingField,
    TextUnit,
    hookimpl,
)

GOOD_TOKEN = "tok_good_0123456789"


class StrictProvider(Provider):
    id = "strict"
    name = "Strict"
    capabilities = Capabilities()
    limits = Limits(
        max_text_length=10,
        text_unit=TextUnit.GRAPHEMES,
        max_media=1,
        media_kinds=frozenset({"image"}),
        max_media_bytes={"image": 1_000},
        max_thread_parts=1,
    )
    auth = (
        CredentialField("token", "Token", secret=True, pattern=r"tok_[a-z0-9_]+"),
        CredentialField("channel", "Channel", required=False),
    )
    settings = (SettingField("board", "Board", type="choice", choices=("news", "fun"), required=True),)

    async def connect(self, ctx, credentials):
        if credentials["token"] != GOOD_TOKEN:
            raise Rejected("invalid_auth", "invalid_auth")
        return AccountProfile(external_id="U123", handle=credentials.get("channel") or "strict-bot", account_type="channel")

    async def publish(self, ctx, request):
        return PublishResult(platform_post_id="1")


@hookimpl
def register_providers():
    return [StrictProvider()]


def install(runtime) -> None:
    """Register the plugin on a running runtime, as an installed entry point would be."""
    runtime.plugins.add("strict-test-plugin", SimpleNamespace(register_providers=register_providers))
