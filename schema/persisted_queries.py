"""Automatic persisted queries, Apollo's protocol: a client sends a document's SHA-256, not the document.

A client (Apollo Client's persisted-queries link, Apollo Kotlin, urql's exchange) first sends
only ``extensions.persistedQuery = {version: 1, sha256Hash}``. A server that knows the hash runs
the document it stored; one that does not answers ``PersistedQueryNotFound`` and the client sends
the hash again with the document, which is checked against the hash and stored. A busy client's
requests then carry a few bytes instead of its documents, and GET requests stay short enough to
cache.

``PersistedQueryNotFound`` is answered with HTTP 200: Apollo's link turns persisted queries off
for good on a 400 or a 500, taking them for a server that does not support them.

The store is this process's, bounded, least recently used first out: a document is cheap to send
again, so another process behind the load balancer only costs one extra round trip.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any

from gateway.core import RequestRefused

NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
DEFAULT_CAPACITY = 2_000


class PersistedQueries:
    """The documents this process has been sent with their hash, at most ``capacity`` of them."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._documents: OrderedDict[str, str] = OrderedDict()

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The document to run: ``query`` itself, or the one stored under the request's hash."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        digest = _checked_hash(persisted)
        if query is None:
            document = self._documents.get(digest)
            if document is None:
                raise RequestRefused(NOT_FOUND_MESSAGE, status=200, code="PERSISTED_QUERY_NOT_FOUND")
            self._documents.move_to_end(digest)
            return document
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise RequestRefused("The persistedQuery's sha256Hash is not the SHA-256 of the query sent with it.", code="PERSISTED_QUERY_HASH_MISMATCH")
        self._documents[digest] = query
        self._documents.move_to_end(digest)
        while len(self._documents) > self.capacity:
            self._documents.popitem(last=False)
        return query


def _checked_hash(persisted: Any) -> str:
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise RequestRefused("extensions.persistedQuery must be {version: 1, sha256Hash}.", code="PERSISTED_QUERY_INVALID")
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise RequestRefused("extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits.", code="PERSISTED_QUERY_INVALID")
    return digest
