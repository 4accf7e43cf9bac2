"""Provider-scoped storage: a small JSON record store the gateway keeps in its own database.

A plugin may not import the gateway, yet some need to remember things (the sandbox keeps what it
"published"; a provider may cache an upload id). ``ProviderContext.store`` is such a store,
already scoped to the calling provider and account: one provider can never read another's
records, nor one account another's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ProviderStore(Protocol):
    """JSON records keyed by (kind, key) inside the caller's (provider, account) scope.

    Values must be JSON-serialisable mappings; they come back as plain dicts.
    """

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record, or None when there is none."""

    async def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        """Create or replace the record."""

    async def delete(self, kind: str, key: str) -> bool:
        """Remove the record; True when there was one."""

    async def list(self, kind: str, *, limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """(key, value) pairs of one kind, oldest first, at most ``limit``."""


class MemoryProviderStore:
    """An in-memory ProviderStore for tests and conformance runs."""

    def __init__(self, records: Mapping[tuple[str, str], Mapping[str, Any]] | None = None) -> None:
        """``records``, keyed by (kind, key), are there from the start (a test's cached session, say)."""
        self._records: dict[tuple[str, str], dict[str, Any]] = {}
        for key, value in (records or {}).items():
            self._records[key] = json.loads(json.dumps(dict(value)))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        value = self._records.get((kind, key))
        return copy.deepcopy(value) if value is not None else None

    async def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        # A JSON round trip, as the database store does: non-JSON values fail here too.
        self._records.pop((kind, key), None)
        self._records[(kind, key)] = json.loads(json.dumps(dict(value)))

    async def delete(self, kind: str, key: str) -> bool:
        return self._records.pop((kind, key), None) is not None

    async def list(self, kind: str, *, limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
        found = [(key, copy.deepcopy(value)) for (k, key), value in self._records.items() if k == kind]
        return found[:limit]
