"""Automatic persisted queries (Apollo's protocol) over POST and GET, and their refusals."""

from __future__ import annotations

import hashlib
import json

import pytest

from gateway.core.http_errors import RequestRefused
from schema.persisted_queries import PersistedQueries

QUERY = "query Who { viewer { apiKeyId } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()


def persisted(digest: str = DIGEST, version: int = 1) -> dict:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def post(api, key: str, body: dict):
    return await api.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {key}"})


async def test_a_hash_the_server_has_not_seen_asks_for_the_document_then_runs_alone(api, org):
    first = await post(api, org.secret, {"extensions": persisted()})
    # 200, not 400: Apollo's link turns persisted queries off for good on a 400 or a 500.
    assert first.status_code == 200
    assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert first.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    registered = await post(api, org.secret, {"query": QUERY, "extensions": persisted()})
    assert registered.json()["data"] == {"viewer": {"apiKeyId": org.api_key_id}}

    by_hash = await post(api, org.secret, {"extensions": persisted()})
    assert by_hash.json()["data"] == {"viewer": {"apiKeyId": org.api_key_id}}

    params = {"extensions": json.dumps(persisted())}
    by_get = await api.http.get("/graphql", params=params, headers={"Authorization": f"Bearer {org.secret}"})
    assert by_get.json()["data"] == {"viewer": {"apiKeyId": org.api_key_id}}


async def test_a_document_that_does_not_match_its_hash_is_refused_and_not_stored(api, org):
    other = "query { viewer { scopes } }"
    refused = await post(api, org.secret, {"query": other, "extensions": persisted()})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    still_unknown = await post(api, org.secret, {"extensions": persisted()})
    assert still_unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_malformed_persisted_query_is_refused_with_a_stable_code(api, org):
    for extensions in (persisted(version=2), persisted(digest="XYZ"), {"persistedQuery": "abc"}):
        refused = await post(api, org.secret, {"extensions": extensions})
        assert refused.status_code == 400, extensions
        assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID", extensions


def test_the_store_keeps_the_most_recently_used_documents_within_its_capacity():
    store = PersistedQueries(capacity=2)
    documents = [f"query Q{i} {{ viewer {{ apiKeyId }} }}" for i in range(3)]
    digests = [hashlib.sha256(d.encode()).hexdigest() for d in documents]
    store.resolve(documents[0], persisted(digests[0]))
    store.resolve(documents[1], persisted(digests[1]))
    assert store.resolve(None, persisted(digests[0])) == documents[0]  # used: now the most recent
    store.resolve(documents[2], persisted(digests[2]))  # over capacity: the least recent (Q1) goes
    assert store.resolve(None, persisted(digests[0])) == documents[0]
    assert store.resolve(None, persisted(digests[2])) == documents[2]
    with pytest.raises(RequestRefused) as refused:  # the least recently used document is gone
        store.resolve(None, persisted(digests[1]))
    assert refused.value.code == "PERSISTED_QUERY_NOT_FOUND"
