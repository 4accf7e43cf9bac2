"""The webhook worker: claims due deliveries with a lease, calls the endpoints, records outcomes.

It runs wherever the publishing engine runs (``serve`` in-process, ``socialgate worker``) and
any number of them share one database: a claim is one transaction that leases rows no lease
holds (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never call for the same
delivery at once, and a worker that dies leaves its deliveries to whoever claims them after the
lease — at least once, never lost.

One slow or dead endpoint never delays another's deliveries: each call runs in its own task,
and a worker has at most ``PER_ENDPOINT`` calls in flight per endpoint (the claim ranks each
endpoint's due rows and skips endpoints that are full), so a hanging receiver holds a few slots
and the rest keep moving. Outcomes are written in batches, in the transaction that claims the
next deliveries: under load one transaction serves many calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import WakeableLoop
from gateway.core import clock as clocks
from gateway.events import BusEvent, record_org_event
from gateway.observability import count_webhook_deliveries
from gateway.outbound import GuardedNetworkBackend, GuardedTransport
from gateway.storage import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from gateway.webhooks.calls import Call, CallResult, call_endpoint
from gateway.webhooks.endpoints import signing_secrets
from gateway.webhooks.ladder import FAILING_DISABLES_AFTER, GONE, LADDER, next_delay, retry_after_seconds
from gateway.webhooks.outbox import endpoints_changed

log = logging.getLogger("socialgate.webhooks")

CALL_TIMEOUT = 15.0
PER_ENDPOINT = 4
MAX_IN_FLIGHT = 64
LEASE_SHARE_FOR_CALL = 0.8  # a call ends well before its lease, so no other worker takes it mid-call
STOP_GRACE = 5.0
# After a wake, how long the loop lets other calls end and events commit before its round: under
# load, one transaction then records and claims for many deliveries instead of one each.
GATHER_SECONDS = 0.005
ENDPOINT_DISABLED = "webhook.endpoint_disabled"
D, E = WebhookDelivery, WebhookEndpoint


class WebhookDispatcher:
    """Delivers this database's due webhooks, from one process, until stopped."""

    def __init__(
        self,
        runtime: Any,
        *,
        clock: Callable[[], datetime] | None = None,
        ladder: Sequence[float] = LADDER,
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.database = runtime.database
        self.clock = clock or (lambda: clocks.utcnow())
        self.ladder = tuple(ladder)
        self.allow_private = settings.allow_private_urls
        self.poll_seconds = settings.scheduler_poll_seconds
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self.call_timeout = min(CALL_TIMEOUT, settings.webhook_lease_seconds * LEASE_SHARE_FOR_CALL)
        self.worker_id = f"webhooks-{socket.gethostname()}-{os.getpid()}-{id(self):x}"[:64]
        self.http = httpx.AsyncClient(
            # Its own pool, apart from the providers': webhooks never queue behind a platform's calls.
            transport=GuardedTransport(
                GuardedNetworkBackend(allow_private=self.allow_private),
                limits=httpx.Limits(max_connections=MAX_IN_FLIGHT * 2, max_keepalive_connections=MAX_IN_FLIGHT),
            ),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(CALL_TIMEOUT),
        )
        self._in_flight: Counter[str] = Counter()
        self._calls: set[asyncio.Task[None]] = set()
        self._finished: list[CallResult] = []
        self._loop = WakeableLoop("webhook dispatcher")

    def start(self) -> None:
        self._loop.start(self._run)

    def wake(self) -> None:
        """A delivery may be due now (an event committed, a call ended): look without waiting to poll."""
        self._loop.wake()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._calls:
            _, pending = await asyncio.wait(set(self._calls), timeout=STOP_GRACE)
            for task in pending:  # their leases run out and another worker delivers them
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self._round(claim=False)
        finally:
            await self.http.aclose()

    async def run_once(self) -> int:
        """Claim what is due, wait for those calls and record them; how many were claimed.

        The step a test drives by hand, with a fake clock or a short ladder, instead of the loop.
        """
        claimed = await self._round(claim=True)
        while self._calls:
            await asyncio.gather(*set(self._calls), return_exceptions=True)
        await self._round(claim=False)
        return claimed

    async def _run(self) -> None:
        woken = False
        while not self._loop.stopping:
            self._loop.woken.clear()
            try:
                # Woken, something is due or done here; on a poll, a read decides whether a write is worth it.
                claimed = await self._round(claim=True, look_first=not woken)
            except Exception:
                log.exception("webhook round failed; trying again")
                claimed = 0
            if claimed:
                woken = True  # more may be due right away
                continue
            try:
                await asyncio.wait_for(self._loop.woken.wait(), self.poll_seconds)
            except TimeoutError:
                woken = False
                continue
            woken = True
            await asyncio.sleep(GATHER_SECONDS)

    async def _round(self, *, claim: bool, look_first: bool = True) -> int:
        """Record the calls that ended and claim as many due deliveries as there are free slots, in one transaction."""
        finished, self._finished = self._finished, []
        free = MAX_IN_FLIGHT - len(self._calls)
        if not finished and (not claim or free <= 0):
            return 0
        if not finished and look_first and not await self._anything_due():
            return 0  # an idle worker reads; it does not take SQLite's write lock every poll
        events: list[BusEvent] = []
        calls: list[Call] = []
        try:
            async with self.database.write() as session:
                now = self.clock()
                if finished:
                    events = await self._record(session, finished, now)
                if claim and free > 0:
                    calls = await self._claim(session, free, now)
        except BaseException:
            self._finished = finished + self._finished  # not written: written with the next round
            raise
        for event in events:
            await self.runtime.publish(event)
        for call in calls:
            self._in_flight[call.endpoint_id] += 1
            task = asyncio.create_task(self._call(call), name=f"webhook {call.delivery_id}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        return len(calls)

    async def _call(self, call: Call) -> None:
        try:
            result = await call_endpoint(self.http, call, timeout=self.call_timeout, allow_private=self.allow_private, now=self.clock())
        except Exception:  # a bug, not an answer: the lease runs out and the delivery is tried again
            log.exception("webhook call failed unexpectedly", extra={"delivery_id": call.delivery_id})
            return
        finally:
            self._in_flight[call.endpoint_id] -= 1
        count_webhook_deliveries(delivered=int(result.succeeded), failed=int(not result.succeeded))
        self._finished.append(result)
        self.wake()

    async def _anything_due(self) -> bool:
        async with self.database.read() as session:
            found = await session.execute(select(D.id).join(E, E.id == D.endpoint_id).where(*_claimable(self.clock())).limit(1))
            return found.first() is not None

    async def _claim(self, session: AsyncSession, free: int, now: datetime) -> list[Call]:
        due, live = _claimable(now)
        full = [endpoint for endpoint, count in self._in_flight.items() if count >= PER_ENDPOINT]
        ranked = (
            select(D.id, func.row_number().over(partition_by=D.endpoint_id, order_by=(D.next_attempt_at, D.id)).label("rank"))
            .join(E, E.id == D.endpoint_id)
            .where(due, live, D.endpoint_id.not_in(full))
            .subquery()
        )
        rows = (await session.execute(
            select(D.id, D.endpoint_id, D.payload, D.attempt_count, E.url, E.secret, E.previous_secret, E.previous_secret_expires_at)
            .join(E, E.id == D.endpoint_id)
            .where(D.id.in_(select(ranked.c.id).where(ranked.c.rank <= PER_ENDPOINT)), due, live)
            .order_by(D.next_attempt_at, D.id)
            .limit(free)
            .with_for_update(skip_locked=True, of=D)
        )).all()
        taken: Counter[str] = Counter()
        chosen = []
        for row in rows:
            if self._in_flight[row.endpoint_id] + taken[row.endpoint_id] < PER_ENDPOINT:
                taken[row.endpoint_id] += 1
                chosen.append(row)
        if not chosen:
            return []
        signing: dict[str, list[str]] = {}  # each endpoint's secrets, opened once per claim
        calls = []
        for row in chosen:
            if row.endpoint_id not in signing:
                signing[row.endpoint_id] = signing_secrets(self.runtime.secret_key, row.endpoint_id, row, now)
            calls.append(Call(delivery_id=row.id, endpoint_id=row.endpoint_id, url=row.url, payload=dict(row.payload),
                              secrets=signing[row.endpoint_id], number=row.attempt_count + 1))
        if calls:
            await session.execute(
                update(D).where(D.id.in_([c.delivery_id for c in calls])).values(
                    status="delivering", lease_owner=self.worker_id, lease_expires_at=now + self.lease, updated_at=now,
                ).execution_options(synchronize_session=False)
            )
        return calls

    async def _record(self, session: AsyncSession, results: list[CallResult], now: datetime) -> list[BusEvent]:
        await session.execute(insert(WebhookAttempt), [{
            "delivery_id": r.call.delivery_id, "number": r.call.number, "started_at": r.started_at, "finished_at": r.finished_at,
            "status_code": r.status_code, "error": r.error, "duration_ms": r.duration_ms, "response_excerpt": r.excerpt,
        } for r in results])
        ours = and_(D.lease_owner == self.worker_id, D.status == "delivering")  # no other worker took it over since
        successes: dict[int | None, list[str]] = {}
        for result in results:
            if result.succeeded:
                successes.setdefault(result.status_code, []).append(result.call.delivery_id)
        for status_code, ids in successes.items():  # the common case, one statement per status code
            await session.execute(update(D).where(D.id.in_(ids), ours).values(
                status="delivered", delivered_at=now, next_attempt_at=None, attempt_count=D.attempt_count + 1,
                ladder_step=D.ladder_step + 1, last_status_code=status_code, last_error=None,
                lease_owner=None, lease_expires_at=None, updated_at=now,
            ).execution_options(synchronize_session=False))
        failures = [r for r in results if not r.succeeded]
        if failures:
            steps = dict((await session.execute(
                select(D.id, D.ladder_step).where(D.id.in_([r.call.delivery_id for r in failures]), ours)
            )).all())
            for result in failures:
                if result.call.delivery_id in steps:
                    await session.execute(update(D).where(D.id == result.call.delivery_id).values(
                        **self._retry(result, steps[result.call.delivery_id], now)
                    ).execution_options(synchronize_session=False))
        return await self._judge_endpoints(session, results, now)

    def _retry(self, result: CallResult, step: int, now: datetime) -> dict[str, Any]:
        """A failed attempt: due again after the ladder's next wait (or Retry-After), or failed for good."""
        delay = None if result.status_code == GONE else next_delay(
            self.ladder, step + 1, result.status_code, retry_after_seconds(result.retry_after, now)
        )
        return {
            "attempt_count": result.call.number, "ladder_step": step + 1, "last_status_code": result.status_code,
            "last_error": result.error, "lease_owner": None, "lease_expires_at": None, "updated_at": now,
            "status": "failed" if delay is None else "pending",
            "next_attempt_at": None if delay is None else now + timedelta(seconds=delay),
        }

    async def _judge_endpoints(self, session: AsyncSession, results: list[CallResult], now: datetime) -> list[BusEvent]:
        """A success ends an endpoint's failing streak; 410 or five days of failures disable it, with an org event."""
        succeeded = {r.call.endpoint_id for r in results if r.succeeded}
        failed = {r.call.endpoint_id for r in results if not r.succeeded} - succeeded
        gone = {r.call.endpoint_id for r in results if r.status_code == GONE}
        if succeeded:
            await session.execute(update(E).where(E.id.in_(succeeded), E.failing_since.is_not(None)).values(failing_since=None))
        events: list[BusEvent] = []
        if not failed:
            return events
        for endpoint in (await session.execute(select(E).where(E.id.in_(failed)).with_for_update())).scalars():
            endpoint.failing_since = endpoint.failing_since or now
            reason = "gone" if endpoint.id in gone else "failing" if now - endpoint.failing_since >= FAILING_DISABLES_AFTER else None
            if reason is None or not endpoint.enabled:
                continue
            endpoint.enabled = False
            endpoint.disabled_reason = reason
            endpoints_changed(session)
            log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id, "reason": reason})
            events.append(await record_org_event(
                session, endpoint.organization_id, ENDPOINT_DISABLED,
                {"endpointId": endpoint.id, "reason": reason, "failingSince": endpoint.failing_since.isoformat()}, endpoint.id,
            ))
        await session.flush()
        return events


def _claimable(now: datetime) -> tuple[Any, Any]:
    """A delivery a worker may claim: due (or leased by a worker that died mid-call), to a live endpoint."""
    due = or_(
        and_(D.status == "pending", D.next_attempt_at <= now),
        and_(D.status == "delivering", D.lease_expires_at < now),
    )
    return due, and_(E.enabled.is_(True), E.deleted_at.is_(None))
