"""The database ProviderStore keeps each provider's and account's records apart."""

import pytest

from tests.on_disk import assert_not_on_disk


async def test_records_are_scoped_by_provider_and_account(runtime):
    mine = runtime.provider_context("sandbox", "acct_a", {}).store
    other_account = runtime.provider_context("sandbox", "acct_b", {}).store
    other_provider = runtime.provider_context("slack-webhook", "acct_a", {}).store
    await mine.put("post", "p1", {"text": "one", "n": [1, 2]})
    await mine.put("post", "p2", {"text": "two"})
    await other_account.put("post", "p1", {"text": "theirs"})
    assert await mine.get("post", "p1") == {"text": "one", "n": [1, 2]}
    assert await other_account.get("post", "p1") == {"text": "theirs"}
    assert await other_provider.get("post", "p1") is None
    assert [key for key, _ in await mine.list("post")] == ["p1", "p2"]
    assert await mine.list("post", limit=1) == [("p1", {"text": "one", "n": [1, 2]})]
    await mine.put("post", "p1", {"text": "edited"})
    assert await mine.get("post", "p1") == {"text": "edited"}
    assert await mine.delete("post", "p1") is True
    assert await mine.delete("post", "p1") is False
    assert await other_account.get("post", "p1") == {"text": "theirs"}


async def test_values_must_be_json(runtime):
    store = runtime.provider_context("sandbox", "acct_a", {}).store
    with pytest.raises(TypeError):
        await store.put("post", "bad", {"when": object()})
    assert await store.get("post", "bad") is None


async def test_records_are_sealed_at_rest(runtime, tmp_path):
    from sqlalchemy import select

    from gateway.storage.models import ProviderRecord

    store = runtime.provider_context("bluesky", "acct_a", {}).store
    await store.put("session", "current", {"refreshJwt": "eyJ-very-secret-refresh-token"})
    async with runtime.database.read() as session:
        [raw] = (await session.execute(select(ProviderRecord.value))).scalars().all()
    assert "very-secret" not in str(raw)
    assert await store.get("session", "current") == {"refreshJwt": "eyJ-very-secret-refresh-token"}
    assert_not_on_disk(b"very-secret", tmp_path.glob("socialgate.db*"))
