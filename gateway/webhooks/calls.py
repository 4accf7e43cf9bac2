"""One signed HTTP call of a delivery, and what it learned.

Standard Webhooks: ``webhook-id`` (the delivery's id, the same on every attempt),
``webhook-timestamp`` (this attempt's wall-clock second) and ``webhook-signature`` (``v1,<base64
HMAC-SHA256>`` of ``id.timestamp.body`` by the ``standardwebhooks`` library, one per secret, space
separated during a rotation). The URL is checked by the SSRF guard before each call and the
guarded transport checks the address it connects to; redirects are not followed (a 3xx is a
failure); the whole call, body included, gets at most the timeout; at most 4 KB of the answer is
kept.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks import Webhook

from gateway.outbound import UnsafeURL, validate_url

EXCERPT_BYTES = 4096
USER_AGENT = "socialgate-webhooks/1"


@dataclass(frozen=True)
class Call:
    delivery_id: str
    endpoint_id: str
    url: str
    payload: dict[str, Any]
    secrets: list[str]
    number: int  # this attempt's number, from 1


@dataclass(frozen=True)
class CallResult:
    call: Call
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    excerpt: str | None
    retry_after: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None


def body_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(delivery_id: str, body: str, secrets: list[str], sent_at: datetime) -> dict[str, str]:
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(delivery_id, sent_at, body) for secret in secrets),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


async def _excerpt(response: httpx.Response) -> str:
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk[: EXCERPT_BYTES - len(kept)]
        if len(kept) >= EXCERPT_BYTES:
            break
    return kept.decode("utf-8", errors="replace")


async def call_endpoint(client: httpx.AsyncClient, call: Call, *, timeout: float, allow_private: bool, now: datetime) -> CallResult:
    """POST the delivery; every failure becomes a result with a stable error code, never an exception."""
    started = time.monotonic()
    status_code: int | None = None
    excerpt: str | None = None
    retry_after: str | None = None
    error: str | None = None
    try:
        url = validate_url(call.url, allow_private=allow_private)
        body = body_of(call.payload)
        headers = signed_headers(call.delivery_id, body, call.secrets, datetime.now(UTC))
        async with asyncio.timeout(timeout):
            response = await client.send(client.build_request("POST", url, content=body.encode(), headers=headers), stream=True)
            try:
                status_code = response.status_code
                retry_after = response.headers.get("retry-after")
                excerpt = await _excerpt(response)
            finally:
                await response.aclose()
        if not 200 <= status_code < 300:
            error = f"HTTP_{status_code}"
    except TimeoutError:
        error = "TIMEOUT"
    except UnsafeURL as refused:
        error = refused.code
    except httpx.HTTPError as failure:  # refused connection, reset, TLS: the class says enough, the URL stays out
        error = f"NETWORK_ERROR: {type(failure).__name__}"
    elapsed = time.monotonic() - started
    return CallResult(
        call=call, started_at=now, finished_at=now + timedelta(seconds=elapsed), duration_ms=int(elapsed * 1000), status_code=status_code,
        error=error, excerpt=excerpt, retry_after=retry_after,
    )
