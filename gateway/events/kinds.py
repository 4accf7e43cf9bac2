"""Every kind of event the gateway emits, in one registry that every emitter goes through.

Why a registry: the same kinds reach ``orgEvents`` subscribers, ``jobEvents`` and webhook
endpoints, and ``docs/events.md`` documents each one for the people who receive them. A kind
added in code but not here is refused when it is recorded (``UnknownEventKind``), and
``tests/test_event_catalogue.py`` holds this registry and the catalogue to each other, so an
undocumented kind cannot ship.
"""

from __future__ import annotations

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "partial", "canceled")
# The statuses a target reports through ``target.<status>`` events (gateway.engine).
TARGET_EVENT_STATUSES = ("publishing", "published", "retry_pending", "failed", "canceled", "unconfirmed", "missed")

EVENT_KINDS: frozenset[str] = frozenset({
    *(f"job.{status}" for status in JOB_STATUSES),
    "job.rescheduled",
    "job.progress",
    *(f"target.{status}" for status in TARGET_EVENT_STATUSES),
    "target.deleted",
    "target.delete_failed",
    "target.deferred",
    "post.status_changed",
    "post.approval_requested",
    "post.approved",
    "post.rejected",
    "campaign.created",
    "campaign.updated",
    "campaign.paused",
    "campaign.resumed",
    "campaign.archived",
    "campaign.posts_moved",
    "post.recurrence_set",
    "post.recurrence_stopped",
    "post.recurrence_scheduled",
    "post.recurrence_finished",
    "ads.account.connected",
    "ads.account.token_expired",
    "ads.write.executed",
    "ads.write.denied",
    "ads.budget.cap_exceeded",
    "ads.sync.drift",
    "metrics.updated",
    "metrics.paused",
    "account.connected",
    "account.token_expired",
    "webhook.endpoint_disabled",
    "webhook.test",
})


class UnknownEventKind(ValueError):
    """An emitter used a kind the registry (and so the catalogue) does not list: a programming error."""


def check_kind(kind: str) -> str:
    if kind not in EVENT_KINDS:
        raise UnknownEventKind(f"event kind {kind!r} is not in gateway.events.kinds.EVENT_KINDS (and docs/events.md)")
    return kind
