"""Live subscriptions: ``jobEvents`` (replay, then live, then complete) and ``orgEvents``.

Both subscribe to the bus before reading stored events, so nothing published in between is lost;
events already replayed are skipped by their sequence number. A subscriber too slow for its
bounded queue gets an error with the code SLOW_CONSUMER and the subscription ends; it can resume
with ``afterSeq``.

``orgEvents(after:)`` resumes after an event's ``id`` (its position in the organization's
stream, ``gateway.events``), on whichever process the client reconnects to when Redis is the bus.

``orgEvents`` without ``after`` over a WebSocket is fanned out: every subscriber of an organization that sent the
same document and variables shares one execution per event, encoded once (``schema.fanout``, the
one fan-out mechanism). Elsewhere (SSE, ``jobEvents`` with its per-subscriber replay) each
subscriber runs its own execution over its own bounded bus queue.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from gateway.core import NotFound, ServiceError
from gateway.engine.queue import FINISHED, find_job
from gateway.events import BusEvent, SubscriptionClosed, follow_job, follow_organization, stream_position
from gateway.observability import subscription_open
from schema.context import Info
from schema.fanout import current_delivery
from schema.jobs import JobEventType
from schema.relay import check_ids

JOB_FINISHED_KINDS = {f"job.{status}" for status in FINISHED}


class SubscriptionEnded(ServiceError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The subscription was closed: {reason}.")
        self.code = reason


@strawberry.type(description="An event of the organization: job progress, target and post status changes, account alerts.")
class OrgEvent:
    id: str | None = strawberry.field(description=(
        "The event's position in the organization's stream: pass the last one seen as `orgEvents(after:)` to "
        "resume, on any process. Null for an event this process found in the database while the stream was unreachable."
    ))
    kind: str
    job_id: strawberry.ID | None
    seq: int | None
    payload: JSON
    occurred_at: datetime

    @classmethod
    def from_event(cls, event: BusEvent) -> OrgEvent:
        return cls(
            id=event.stream_id,
            kind=event.kind,
            job_id=strawberry.ID(event.job_id) if event.job_id else None,
            seq=event.seq,
            payload=dict(event.payload),
            occurred_at=event.occurred_at,
        )


def _matches(kinds: list[str] | None, kind: str) -> bool:
    """``kinds`` entries are exact kinds or prefixes ending in a dot (``target.``)."""
    return not kinds or any(kind == k or (k.endswith(".") and kind.startswith(k)) for k in kinds)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="A job's events after `afterSeq`: stored ones first, then live; ends with the job.")
    async def job_events(self, info: Info, job_id: strawberry.ID, after_seq: int = 0) -> AsyncGenerator[JobEventType, None]:
        principal = info.context.require("jobs:read")
        check_ids([str(job_id)], "job", "jobId")
        runtime = info.context.runtime
        subscription = runtime.events.subscribe(principal.organization_id)
        try:
            async with runtime.database.read() as session:
                job = await find_job(session, principal.organization_id, str(job_id))
            if job is None:
                raise NotFound("No job with that id.")
            with subscription_open("jobEvents"), info.context.watch_key(lambda refusal: subscription.close(refusal.code)):
                async for event in follow_job(runtime.database, subscription, job.id, max(0, after_seq)):
                    yield JobEventType.from_event(event)
                    if event.kind in JOB_FINISHED_KINDS:
                        return
        except SubscriptionClosed as closed:
            raise SubscriptionEnded(closed.reason) from None
        finally:
            subscription.close()

    @strawberry.subscription(description=(
        "Every event of the organization, live; `kinds` filters (exact, or a prefix ending in '.'). With `after` (an "
        "event's `id`), the events after it are replayed first; RESUME_EXPIRED when they are no longer all kept."
    ))
    async def org_events(
        self, info: Info, kinds: list[str] | None = None, after: str | None = None
    ) -> AsyncGenerator[OrgEvent, None]:
        principal = info.context.require("jobs:read")
        if after is not None:
            stream_position(after)  # BAD_USER_INPUT before anything is subscribed
        delivery = current_delivery.get()
        if delivery is not None and after is None:
            # Over a WebSocket: join the organization's stream of this very document, whose results
            # are encoded once for all its subscribers (schema.fanout). Nothing is yielded here.
            with subscription_open("orgEvents"):
                async with delivery.hub.join(principal.organization_id, delivery, info.context.for_shared_stream) as member:
                    reason = await member.ended
            if reason is not None:
                raise SubscriptionEnded(reason)
            return
        runtime = info.context.runtime
        subscription = runtime.events.subscribe(principal.organization_id)
        try:
            with subscription_open("orgEvents"), info.context.watch_key(lambda refusal: subscription.close(refusal.code)):
                async for event in follow_organization(subscription, after):
                    if _matches(kinds, event.kind):
                        yield OrgEvent.from_event(event)
        except SubscriptionClosed as closed:
            raise SubscriptionEnded(closed.reason) from None
        finally:
            subscription.close()
