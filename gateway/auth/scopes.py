"""API-key scopes: ``resource:action`` strings with ``*`` wildcards.

``posts:*`` grants every posts action, ``ads:write:*`` every ads write, ``*`` everything. A
wildcard covers the node it stands on too: ``ads:write:*`` also grants ``ads:write``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The scopes the API checks today. A key may hold a wildcard over any of them.
KNOWN_SCOPES: tuple[str, ...] = (
    "org:read",
    "org:admin",
    "keys:read",
    "keys:write",
    "providers:read",
    "accounts:read",
    "accounts:write",
    "media:read",
    "media:write",
    "posts:read",
    "posts:write",
    "posts:publish",
    "posts:approve",
    "campaigns:read",
    "campaigns:write",
    "analytics:read",
    "jobs:read",
    "jobs:write",
    "ads:read",
    "ads:write:campaigns",
    "ads:write:budgets",
    "ads:write:creative",
    "ads:write:lifecycle",
    "webhooks:read",
    "webhooks:write",
    "audit:read",
    "approvals:review",
    "approvals:client",
)

# The grammar, in one place: lower-case segments joined by SEPARATOR, optionally ending in a
# WILDCARD segment, or the WILDCARD alone. ``grants`` reads scopes with the same two symbols.
SEPARATOR = ":"
WILDCARD = "*"
_SEGMENT = r"[a-z][a-z_]*"
SCOPE_PATTERN = re.compile(
    rf"(?:{re.escape(WILDCARD)}|{_SEGMENT}(?:{SEPARATOR}{_SEGMENT})*(?:{SEPARATOR}{re.escape(WILDCARD)})?)"
)
_WILDCARD_SUFFIX = SEPARATOR + WILDCARD


def is_valid_scope(scope: str) -> bool:
    """Well-formed, and naming (or covering) at least one scope the API knows."""
    if not SCOPE_PATTERN.fullmatch(scope):
        return False
    return any(grants(scope, known) for known in KNOWN_SCOPES)


def grants(granted: str, required: str) -> bool:
    """Whether the one scope ``granted`` allows ``required`` (itself, or under its wildcard)."""
    if granted == WILDCARD or granted == required:
        return True
    if granted.endswith(_WILDCARD_SUFFIX):
        stem = granted[: -len(_WILDCARD_SUFFIX)]
        return required == stem or required.startswith(stem + SEPARATOR)
    return False


def has_scope(granted: Iterable[str], required: str) -> bool:
    return any(grants(scope, required) for scope in granted)


def covers(granted: Iterable[str], requested: Iterable[str]) -> bool:
    """True when every scope in ``requested`` is within ``granted`` (a child key's rule).

    A requested wildcard needs a granted wildcard at least as wide: holding every ``posts:``
    scope one by one does not cover ``posts:*``, which would silently grow with the API.
    """
    granted = list(granted)
    return all(has_scope(granted, scope) for scope in requested)
