"""The benchmark's provider: publishes by POSTing to the local platform, like a real plugin.

It is registered on a running runtime (as ``tests/strict_provider.py`` is), so the benchmark
measures the same path a real platform takes: claim, attempt, ``publish_checked``, one HTTP call
through the shared ``ctx.http`` client, outcome and events.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from providers import AccountProfile, Capabilities, CredentialField, Provider, PublishResult, hookimpl
from providers.http import json_object, raise_for_response, send

PROVIDER_ID = "benchhttp"


class BenchProvider(Provider):
    id = PROVIDER_ID
    name = "Benchmark platform"
    capabilities = Capabilities()
    auth = (
        CredentialField("endpoint", "Platform URL", kind="url", loopback_http=True),
        CredentialField("account", "Account name", required=False),
    )

    async def connect(self, ctx: Any, credentials: dict[str, str]) -> AccountProfile:
        name = credentials.get("account") or "bench"
        return AccountProfile(external_id=f"{credentials['endpoint']}#{name}", handle=name, account_type="profile")

    async def publish(self, ctx: Any, request: Any) -> PublishResult:
        response = await send(
            ctx, "POST", ctx.credential("endpoint") + "/posts", publishes=True,
            json={"text": request.text, "idempotency_key": request.idempotency_key},
        )
        raise_for_response(response)
        body = json_object(response) or {}
        return PublishResult(platform_post_id=str(body["id"]), url=body.get("url"))


@hookimpl
def register_providers() -> list[Provider]:
    return [BenchProvider()]


def install(runtime: Any) -> None:
    """Register the plugin on a running runtime, as an installed entry point would be."""
    runtime.plugins.add("bench-provider", SimpleNamespace(register_providers=register_providers))
