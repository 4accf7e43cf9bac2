"""Slack incoming webhooks as a socialgate provider (an example third-party plugin)."""

from providers import Provider, hookimpl

from slack_webhook_provider.provider import SlackWebhook

__all__ = ["SlackWebhook", "register_providers"]


@hookimpl
def register_providers() -> list[Provider]:
    return [SlackWebhook()]
