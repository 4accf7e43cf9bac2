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
    "webhooks:read",
    "webhooks:write",
)

SCOPE_PATTERN = re.compile(r"^(\*|[a-z][a-z_]*(:[a-z][a-z_]*)*(:\*)?)$")


def is_valid_scope(scope: str) -> bool:
    """Well-formed, and naming (or covering) at least one scope the API knows."""
    if not SCOPE_PATTERN.match(scope):
        return False
    return any(grants(scope, known) for known in KNOWN_SCOPES)


def grants(granted: str, required: str) -> bool:
    if granted == "*" or granted == required:
        return True
    if granted.endswith(":*"):
        stem = granted[:-2]
        return required == stem or required.startswith(stem + ":")
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
