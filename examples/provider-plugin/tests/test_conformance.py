"""The socialgate conformance kit, scripted with Slack's real webhook answers."""

import json

from providers import AuthExpired, DraftMedia, PostDraft, PublishRequest, RateLimited, Rejected, TransientError
from providers.testing import ErrorCase, ProviderConformance, RejectedDraft, reply

from slack_webhook_provider import SlackWebhook

HOOK = "https://hooks.slack.com/services/T0001/B0002/abcdefABCDEF123456"


class TestSlackWebhookConformance(ProviderConformance):
    provider = SlackWebhook()
    credentials = {"webhook_url": HOOK}
    request = PublishRequest(text="Release 2.0 is out :tada:", idempotency_key="tgt_conformance0000000000001")
    success = [reply(200, text="ok")]
    expected_post_id = "B0002:tgt_conformance0000000000001"
    error_cases = [
        ErrorCase("429 with Retry-After", [reply(429, text="rate_limited", headers={"Retry-After": "30"})], RateLimited, retry_after=30),
        ErrorCase("500 rollup_error", [reply(500, text="rollup_error")], TransientError, code="ROLLUP_ERROR"),
        ErrorCase("503", [reply(503, text="")], TransientError),
        ErrorCase("403 invalid_token", [reply(403, text="invalid_token")], AuthExpired, code="INVALID_TOKEN"),
        ErrorCase("404 no_service", [reply(404, text="no_service")], AuthExpired, code="NO_SERVICE"),
        ErrorCase("400 invalid_payload", [reply(400, text="invalid_payload")], Rejected, code="INVALID_PAYLOAD"),
        ErrorCase("403 action_prohibited", [reply(403, text="action_prohibited")], Rejected, code="ACTION_PROHIBITED"),
        ErrorCase("404 channel_not_found", [reply(404, text="channel_not_found")], Rejected, code="CHANNEL_NOT_FOUND"),
        ErrorCase("410 channel_is_archived", [reply(410, text="channel_is_archived")], Rejected, code="CHANNEL_IS_ARCHIVED"),
    ]
    platform_rejects = [
        RejectedDraft("Slack truncates beyond 40,000 characters", PostDraft(text="x" * 40_001), "TEXT_TOO_LONG"),
        RejectedDraft("webhooks cannot upload video", PostDraft(text="clip", media=(DraftMedia("video", "video/mp4", 10_000),)), "MEDIA_KIND_NOT_SUPPORTED"),
        RejectedDraft("a webhook message has no thread of its own", PostDraft(text="a", thread=("b",)), "THREADS_NOT_SUPPORTED"),
    ]
    platform_accepts = [PostDraft(text="🎉" * 40_000)]  # 40,000 characters, whatever their width

    def check_published_requests(self, sent):
        (request,) = sent
        assert request.method == "POST"
        assert str(request.url) == HOOK
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == {"text": "Release 2.0 is out :tada:", "unfurl_links": False, "unfurl_media": True}
