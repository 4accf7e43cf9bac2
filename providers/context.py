"""``ProviderContext``: everything a provider call may use, handed in by the gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx

from providers.store import MemoryProviderStore, ProviderStore

# Connect fast, wait for slow platforms (video finalisation can take a while), never forever.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_POOL = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The pooled client the gateway shares between all provider calls (and tests replace the transport of)."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=DEFAULT_TIMEOUT,
        limits=DEFAULT_POOL,
        follow_redirects=False,
        headers={"User-Agent": "socialgate (+https://github.com/socialgate)"},
    )


@dataclass
class CallPhase:
    """Where a provider call stands, for the gateway to read when it has to give up on the call.

    ``preparing`` is true inside ``ProviderContext.preparing()``. ``interrupted_while_preparing``
    turns true when the call is cancelled there (the gateway's deadline ran out), so the gateway
    knows nothing was published and retries instead of leaving the post ``unconfirmed``.
    """

    preparing: bool = False
    interrupted_while_preparing: bool = False


@dataclass(frozen=True)
class ProviderContext:
    """What one provider call gets.

    - ``http``: the gateway's shared, pooled ``httpx.AsyncClient`` (timeouts set). Use it for every
      request, never a client of your own: tests script it through its transport.
    - ``credentials``: the account's decrypted credentials (form fields, or ``TokenSet.to_credentials()``).
    - ``clock``: the current time (UTC); use it rather than ``datetime.now`` so tests can move time.
    - ``log``: a logger already tagged with the provider and account.
    - ``store``: records kept in the gateway's database for this provider and account.
    - ``sleep``: ``asyncio.sleep`` unless a test replaces it.
    - ``phase``: where the call stands (see ``preparing``); the gateway reads it.
    """

    http: httpx.AsyncClient
    provider_id: str
    account_id: str | None = None
    credentials: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], datetime] = utc_now
    log: logging.Logger | logging.LoggerAdapter = field(default_factory=lambda: logging.getLogger("socialgate.provider"))
    store: ProviderStore = field(default_factory=MemoryProviderStore)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    phase: CallPhase = field(default_factory=CallPhase)

    def __post_init__(self) -> None:
        object.__setattr__(self, "credentials", MappingProxyType(dict(self.credentials)))

    def now(self) -> datetime:
        return self.clock()

    def credential(self, name: str, default: str | None = None) -> str | None:
        value = self.credentials.get(name, default)
        return None if value is None else str(value)

    @contextmanager
    def preparing(self) -> Iterator[None]:
        """Mark a phase before anything is published: uploading media, waiting for the platform to process it.

        A call that runs out of time in here published nothing a retry would publish again, so
        the gateway retries it (``TransientError``-like) instead of marking the post
        ``unconfirmed``. Only requests that cannot publish belong inside: ``send(...,
        publishes=True)`` refuses to run here. Parts of a thread published earlier in the same
        call are safe too, as ``publish_thread`` records each before the next is prepared.
        """
        outer = self.phase.preparing
        self.phase.preparing = True
        try:
            yield
        except asyncio.CancelledError:
            self.phase.interrupted_while_preparing = True
            raise
        finally:
            self.phase.preparing = outer
