"""Which events an endpoint asked for: exact kinds, ``group.*`` wildcards, or ``*`` for all."""

from __future__ import annotations

from collections.abc import Iterable

WILDCARD = "*"


def pattern_matches(pattern: str, kind: str) -> bool:
    if pattern == WILDCARD or pattern == kind:
        return True
    return pattern.endswith(".*") and kind.startswith(pattern[:-1])


def wants(patterns: Iterable[str], kind: str) -> bool:
    """Whether an endpoint subscribed with ``patterns`` receives events of ``kind``."""
    return any(pattern_matches(pattern, kind) for pattern in patterns)
