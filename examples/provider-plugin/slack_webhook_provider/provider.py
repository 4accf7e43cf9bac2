"""Publishing to Slack through an incoming webhook URL.

Slack answers a webhook POST with a plain-text word: ``ok`` on success, otherwise an error such
as ``invalid_payload`` (400), ``action_prohibited`` or ``invalid_token`` (403), ``no_service`` or
``channel_not_found`` (404), ``channel_is_archived`` (410), and 429 with ``Retry-After`` when
posting faster than about one message a second. A webhook returns no message id.
"""

from __future__ import annotations

import re
from typing import Any

from providers import (
    AccountProfile,
    AuthExpired,
    Capabilities,
    CredentialField,
    Limits,
    ProviderContext,
    Provider,
    PublishRequest,
    PublishResult,
    Quota,
    Rejected,
    SettingField,
)
from providers.http import raise_for_response, send

WEBHOOK_URL = re.compile(r"https://hooks\.slack\.com/services/(?P<team>[A-Z0-9]+)/(?P<hook>[A-Z0-9]+)/[A-Za-z0-9]+")
# Slack truncates a message's text beyond 40,000 characters; a section block holds 3,000.
MAX_TEXT = 40_000
SECTION_TEXT = 3_000
# The webhook is gone or its token revoked: the account must be connected again.
DEAD_WEBHOOK = {"invalid_token", "no_service", "no_service_id", "no_team", "team_disabled"}
# A freshly created webhook refuses an empty message with one of these: it exists and listens.
EMPTY_MESSAGE_REFUSALS = {"no_text", "invalid_payload"}


class SlackWebhook(Provider):
    id = "slack-webhook"
    name = "Slack (incoming webhook)"
    description = "Posts messages to one Slack channel through an incoming webhook URL."
    capabilities = Capabilities()
    limits = Limits(
        max_text_length=MAX_TEXT,
        max_media=10,  # our cap: each image is one block, and a message holds at most 50 blocks
        media_kinds=frozenset({"image"}),
        quotas=(Quota(count=1, period_seconds=1, description="Slack: about one message per second per webhook"),),
    )
    auth = (
        CredentialField(
            "webhook_url", "Webhook URL", secret=True, kind="url", pattern=WEBHOOK_URL.pattern,
            help="From your Slack app's Incoming Webhooks page.",
        ),
    )
    settings = (
        SettingField("unfurl_links", "Unfurl links", type="boolean", default=False),
        SettingField("unfurl_media", "Unfurl media", type="boolean", default=True),
    )

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """Check the webhook exists by sending it an empty message, which Slack refuses without posting."""
        url = credentials["webhook_url"]
        response = await send(ctx, "POST", url, json={})
        word = response.text.strip()
        if response.status_code == 400 and word in EMPTY_MESSAGE_REFUSALS:
            match = WEBHOOK_URL.fullmatch(url)
            assert match is not None  # the credentials form only accepts URLs of this shape
            return AccountProfile(
                external_id=f"{match['team']}/{match['hook']}", handle=f"webhook-{match['hook']}", account_type="webhook"
            )
        self._raise_for(response)
        raise Rejected("UNEXPECTED_ANSWER", f"Slack accepted an empty message ({response.status_code} {word!r})")

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        url = ctx.credential("webhook_url") or ""
        response = await send(ctx, "POST", url, json=self.payload(request), publishes=True)
        self._raise_for(response)
        match = WEBHOOK_URL.fullmatch(url)
        hook = match["hook"] if match else "webhook"
        # Slack returns no id: ours is the webhook plus the target's stable idempotency key.
        return PublishResult(platform_post_id=f"{hook}:{request.idempotency_key}", url=None, raw=response.text)

    def payload(self, request: PublishRequest) -> dict[str, Any]:
        settings = {s.name: request.settings.get(s.name, s.default) for s in self.settings}
        body: dict[str, Any] = {"text": request.text, **settings}
        if request.media:
            # With blocks, `text` becomes the notification fallback, so the text goes in sections too.
            sections = [
                {"type": "section", "text": {"type": "mrkdwn", "text": request.text[i : i + SECTION_TEXT]}}
                for i in range(0, len(request.text), SECTION_TEXT)
            ]
            images = [{"type": "image", "image_url": m.url, "alt_text": m.alt_text or "image"} for m in request.media]
            body["blocks"] = sections + images
        return body

    def _raise_for(self, response: Any) -> None:
        word = response.text.strip()
        if response.status_code in (403, 404, 410) and word in DEAD_WEBHOOK:
            raise AuthExpired(f"the Slack webhook no longer works ({word})", code=word.upper(), http_status=response.status_code)
        raise_for_response(response, code=word.upper() if re.fullmatch(r"[a-z_]+", word) else None, message=word or None)
