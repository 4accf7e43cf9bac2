"""Exact requests for cases the conformance run does not cover: images, settings, connecting."""

import asyncio
import json

from providers import AuthExpired, PublishRequest
from providers.testing import call_scripted, publish_scripted, reply, sample_media

from slack_webhook_provider import SlackWebhook

HOOK = "https://hooks.slack.com/services/T0001/B0002/abcdefABCDEF123456"
provider = SlackWebhook()


def test_images_become_blocks_with_the_text_in_sections():
    request = PublishRequest(
        text="a" * 3500,
        idempotency_key="tgt_1",
        media=(sample_media("image"),),
        settings={"unfurl_links": True},
    )
    outcome = asyncio.run(publish_scripted(provider, [reply(200, text="ok")], request, credentials={"webhook_url": HOOK}))
    assert outcome.error is None
    body = json.loads(outcome.sent[0].content)
    assert body["unfurl_links"] is True and body["unfurl_media"] is True
    assert [block["type"] for block in body["blocks"]] == ["section", "section", "image"]
    assert body["blocks"][0]["text"] == {"type": "mrkdwn", "text": "a" * 3000}
    assert body["blocks"][1]["text"]["text"] == "a" * 500
    assert body["blocks"][2] == {"type": "image", "image_url": "https://media.example.com/image.bin", "alt_text": "a sample image"}


def test_connect_probes_the_webhook_with_an_empty_message():
    outcome = asyncio.run(
        call_scripted(provider, [reply(400, text="no_text")], lambda ctx: provider.connect(ctx, {"webhook_url": HOOK}))
    )
    assert outcome.error is None
    assert outcome.result.external_id == "T0001/B0002"
    assert outcome.result.account_type == "webhook"
    assert json.loads(outcome.sent[0].content) == {}


def test_connect_refuses_a_removed_webhook():
    outcome = asyncio.run(
        call_scripted(provider, [reply(404, text="no_service")], lambda ctx: provider.connect(ctx, {"webhook_url": HOOK}))
    )
    assert isinstance(outcome.error, AuthExpired)
