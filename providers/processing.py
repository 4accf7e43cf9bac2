"""``Processing``: a publish the platform accepted but has not finished, to be checked again later.

Instagram and Threads containers, TikTok uploads, YouTube and Facebook videos take seconds to
minutes before the post exists (or before it can be published). Sleeping through that inside
``publish`` would hold a worker slot and run into the call's lease, so a provider returns
``Processing`` instead: the target waits in the ``processing`` state (visible in GraphQL and in
events) and the gateway calls ``Provider.poll`` with the same ``handle`` once ``check_after``
has passed, on whichever worker claims it, even after a restart. ``poll`` answers with a
``PublishResult`` when the post is live, another ``Processing`` when it is not yet, or raises
the SDK's errors: a container that failed (ERROR, EXPIRED) before anything was published is a
``Rejected`` (or ``TransientError`` to start over with a fresh upload), never ``Unconfirmed``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

# How long a post may stay processing before the gateway gives up on it, unless ``Processing``
# says otherwise: generous, because a long YouTube video can take hours.
DEFAULT_PROCESSING_DEADLINE = timedelta(hours=24)


@dataclass(frozen=True)
class Processing:
    """Accepted, still processing: check again after ``check_after`` with ``handle``.

    - ``handle``: what ``poll`` needs to find the work again (container id, publish id, upload
      session URI…): JSON-serialisable, stored with the target, never shown to users. Put no
      secret in it: the account's credentials come back in ``ctx`` on every call.
    - ``check_after``: when to poll next (use the platform's advice where it gives one).
    - ``stage``: a short word for people (``uploading``, ``transcoding``, ``container``…), shown
      on the target while it waits.
    - ``published``: True when the post already exists on the platform and only its processing
      is pending (YouTube after the upload): a failure after this point may not be retried by
      publishing again. False (a container not yet published) means nothing is public yet.
    - ``deadline``: how long in all the post may stay processing, counted from the first
      ``Processing``; past it the target fails with ``PROCESSING_TIMEOUT`` (or ends
      ``unconfirmed`` when ``published``).
    """

    handle: Mapping[str, Any]
    check_after: timedelta = timedelta(seconds=30)
    stage: str = "processing"
    published: bool = False
    deadline: timedelta = DEFAULT_PROCESSING_DEADLINE

    def __post_init__(self) -> None:
        try:
            json.dumps(dict(self.handle))
        except (TypeError, ValueError) as error:
            raise TypeError(f"Processing.handle must be JSON-serialisable: {error}") from None
        if self.check_after < timedelta(0):
            raise ValueError("Processing.check_after cannot be negative")
        object.__setattr__(self, "handle", MappingProxyType(dict(self.handle)))


@dataclass(frozen=True)
class SettingChoice:
    """One value a setting can take on one account (a Pinterest board, a Slack channel, a TikTok privacy level)."""

    value: str
    label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
