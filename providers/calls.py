"""What goes into and comes out of a provider call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from providers.metrics import AccountMetricSnapshot, MetricSnapshot

__all__ = ["AccountMetricSnapshot", "MetricSnapshot"]  # re-exported: they were first defined here

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024


@runtime_checkable
class MediaSource(Protocol):
    """Where a media file's bytes come from, for platforms that take uploads rather than URLs."""

    async def read(self) -> bytes:
        """The whole file."""

    def chunks(self, size: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The file in pieces of at most ``size`` bytes, for chunked uploads of large videos."""


@dataclass(frozen=True)
class BytesSource:
    """Media held in memory (tests, small generated images)."""

    data: bytes

    async def read(self) -> bytes:
        return self.data

    async def chunks(self, size: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), size):
            yield self.data[start : start + size]


@dataclass(frozen=True)
class FileSource:
    """Media in a local file, read off the event loop."""

    path: Path

    async def read(self) -> bytes:
        return await asyncio.to_thread(Path(self.path).read_bytes)

    async def chunks(self, size: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self.path, "rb")
        try:
            while piece := await asyncio.to_thread(handle.read, size):
                yield piece
        finally:
            handle.close()


@dataclass(frozen=True)
class PublishMedia:
    """One attachment. ``url`` is public (platforms such as Instagram fetch it themselves);
    ``source`` reads the same bytes for platforms that want an upload."""

    kind: str  # image | video | gif | document
    mime_type: str
    size_bytes: int
    url: str
    source: MediaSource
    alt_text: str = ""
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    filename: str = ""


@dataclass(frozen=True)
class ThreadPart:
    """A post after the first in a thread; it replies to the part before it."""

    text: str
    media: tuple[PublishMedia, ...] = ()


@dataclass(frozen=True)
class PublishRequest:
    """One post to publish on one account.

    ``text`` is final: per-platform overrides are already applied. ``thread`` holds the parts
    after the first (empty for a single post); ``reply_to`` is the platform id of a post this one
    answers (a campaign step replying to an earlier one). ``idempotency_key`` is stable across
    retries of the same target: send it to platforms that deduplicate, and use it in
    ``reconcile`` to find a post whose answer was lost.
    """

    text: str
    idempotency_key: str
    media: tuple[PublishMedia, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    thread: tuple[ThreadPart, ...] = ()
    reply_to: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))


@dataclass(frozen=True)
class PublishResult:
    """A published post: the platform's id, its public URL when it has one, and the raw answer.

    ``thread_post_ids`` are the ids of the thread parts after the first, in order.
    """

    platform_post_id: str
    url: str | None = None
    raw: Any = None
    thread_post_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenSet:
    """OAuth tokens as the platform issued them."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    token_type: str = "Bearer"
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_credentials(self) -> dict[str, str]:
        """The tokens as the credentials a later ``ProviderContext`` will carry (strings only)."""
        values = {"access_token": self.access_token, "token_type": self.token_type, **self.extra}
        if self.refresh_token is not None:
            values["refresh_token"] = self.refresh_token
        if self.expires_at is not None:
            values["expires_at"] = self.expires_at.isoformat()
        if self.scopes:
            values["scopes"] = " ".join(self.scopes)
        return values


@dataclass(frozen=True)
class AccountProfile:
    """Who a set of credentials belongs to on the platform."""

    external_id: str  # the platform's stable id for the account (never the handle, which can change)
    handle: str
    display_name: str = ""
    account_type: str = "user"  # user | page | organization | channel | webhook …
    avatar_url: str | None = None
    raw: Any = None


@dataclass(frozen=True)
class Event:
    """Something that happened in the gateway, handed to ``on_event`` observers.

    ``kind`` is a dotted word such as ``target.published`` or ``account.token_expired``;
    ``payload`` carries ids and figures, never credentials.
    """

    kind: str
    organization_id: str
    occurred_at: datetime
    subject_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
