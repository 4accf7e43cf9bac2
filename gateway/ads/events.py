"""The ``ads.*`` organization events, by name, and how a refusal is recorded after its rollback.

| kind | payload |
|---|---|
| ``ads.account.connected`` | ``adAccountId, accountId, provider, externalId, currency`` |
| ``ads.account.token_expired`` | ``adAccountId, accountId, provider`` |
| ``ads.write.executed`` | ``jobId, operation, level, objectId, adAccountId`` |
| ``ads.write.denied`` | ``operation, code, message`` (+ ``jobId``, ``adAccountId`` when a job ran) |
| ``ads.budget.cap_exceeded`` | ``operation, adAccountId, currency, capMinor, committedMinor, requestedMinor`` |
| ``ads.sync.drift`` | ``objectId, level, fields`` (the names of the fields that drifted) |

Amounts in payloads are strings of minor units, like the API's ``Int64``.
"""

from __future__ import annotations

from typing import Any

from gateway.events import BusEvent, record_org_event
from gateway.runtime import Runtime

ACCOUNT_CONNECTED = "ads.account.connected"
ACCOUNT_TOKEN_EXPIRED = "ads.account.token_expired"
WRITE_EXECUTED = "ads.write.executed"
WRITE_DENIED = "ads.write.denied"
BUDGET_CAP_EXCEEDED = "ads.budget.cap_exceeded"
SYNC_DRIFT = "ads.sync.drift"
KINDS = (ACCOUNT_CONNECTED, ACCOUNT_TOKEN_EXPIRED, WRITE_EXECUTED, WRITE_DENIED, BUDGET_CAP_EXCEEDED, SYNC_DRIFT)


async def record_apart(runtime: Runtime, organization_id: str, events: list[tuple[str, dict[str, Any], str | None]]) -> None:
    """Store and publish events in a transaction of their own.

    For refusals: the refused work's transaction rolls back, and its events must not go with it.
    """
    stored: list[BusEvent] = []
    async with runtime.database.write() as session:
        for kind, payload, subject in events:
            stored.append(await record_org_event(session, organization_id, kind, payload, subject))  # event kinds: ads.*
    for event in stored:
        await runtime.publish(event)


async def publish_all(runtime: Runtime, events: list[BusEvent]) -> None:
    """Publish events whose transaction has committed."""
    for event in events:
        await runtime.publish(event)
