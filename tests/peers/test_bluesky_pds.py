"""The Bluesky provider against a real PDS (``@atproto/pds`` with a PLC directory) on 127.0.0.1.

An account is created through the PDS's own API with an app password; the provider then
connects it and publishes through the gateway runtime's real HTTP client and database-backed
provider store, and every record is read back from the PDS. Skipped only where node is absent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.accounts.accounts import verify_credentials
from gateway.runtime import Runtime
from gateway.settings import Settings
from plugins.bluesky import POST, PUBLISH_PLAN, SESSION, Bluesky
from providers import BytesSource, ProviderContext, PublishMedia, PublishRequest, Rejected, ThreadPart, validate_credentials
from tests.http_peer import Reply, scripted_server
from tests.media_samples import png
from tests.peers.bluesky_pds_peer import PeerUnavailable, RunningPds, running_pds

ACCOUNT = "acct_bluesky_peer"
provider = Bluesky()


@pytest.fixture(scope="session")
def pds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPds]:
    try:
        with running_pds(tmp_path_factory.mktemp("bluesky-pds")) as peer:
            yield peer
    except PeerUnavailable as missing:
        pytest.skip(str(missing))


class Recorder(httpx.AsyncBaseTransport):
    """The real transport, noting each XRPC method called (to prove sessions are reused)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.methods: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append(request.url.path.removeprefix("/xrpc/"))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Peer:
    runtime: Runtime
    recorder: Recorder
    pds: RunningPds
    credentials: dict[str, str]
    did: str

    def context(self) -> ProviderContext:
        """A provider call's context as the gateway builds it: real HTTP, the database store."""
        return self.runtime.provider_context(provider.id, ACCOUNT, self.credentials)

    def get(self, nsid: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.pds.url}/xrpc/{nsid}", params=params, timeout=10)

    def record(self, uri: str) -> dict:
        repo, _, rkey = uri.removeprefix("at://").split("/")
        response = self.get("com.atproto.repo.getRecord", repo=repo, collection=POST, rkey=rkey)
        assert response.status_code == 200, response.text
        return response.json()

    def post_count(self) -> int:
        response = self.get("com.atproto.repo.listRecords", repo=self.did, collection=POST, limit="100")
        return len(response.json()["records"])


def _new_account(pds: RunningPds, handle: str) -> tuple[str, str]:
    """(DID, app password) of a fresh account, made through the PDS's API as a person would."""
    created = httpx.post(
        f"{pds.url}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "email": f"{handle}@example.test", "password": "main-password-never-shared"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    session = created.json()
    app_password = httpx.post(
        f"{pds.url}/xrpc/com.atproto.server.createAppPassword",
        json={"name": "socialgate"},
        headers={"Authorization": f"Bearer {session['accessJwt']}"},
        timeout=30,
    )
    assert app_password.status_code == 200, app_password.text
    return session["did"], app_password.json()["password"]


@pytest.fixture
async def peer(pds: RunningPds, settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    handle = request.node.name.removeprefix("test_").replace("_", "")[:18] + ".test"
    did, app_password = _new_account(pds, handle)
    recorder = Recorder()
    runtime = Runtime(settings, http_transport=recorder)
    await runtime.start()
    try:
        yield Peer(runtime, recorder, pds, {"service": pds.url, "identifier": handle, "app_password": app_password}, did)
    finally:
        await runtime.stop()


async def test_connects_and_publishes_a_link_with_byte_offsets_reusing_one_session(peer: Peer) -> None:
    # Connected the way the gateway connects an account: the credentials form (which takes the
    # loopback PDS), then the installed plugin's connect.
    assert validate_credentials(provider, peer.credentials) == []
    profile = await verify_credentials(peer.runtime, "bluesky", peer.credentials)
    assert (profile.external_id, profile.handle) == (peer.did, peer.credentials["identifier"])

    text = "Grüße 👨‍👩‍👧 read https://example.com/socialgate?x=1 #socialgate"
    # No card: example.com is not reachable from here (the card has its own test, below).
    request = PublishRequest(text=text, idempotency_key="tgt_link", settings={"link_card": False})
    result = await provider.publish(peer.context(), request)
    record = peer.record(result.platform_post_id)["value"]
    assert record["text"] == text
    encoded = text.encode()
    [link, tag] = record["facets"]
    assert encoded[link["index"]["byteStart"] : link["index"]["byteEnd"]].decode() == "https://example.com/socialgate?x=1"
    assert link["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/socialgate?x=1"}]
    assert encoded[tag["index"]["byteStart"] : tag["index"]["byteEnd"]].decode() == "#socialgate"
    assert result.url == f"https://bsky.app/profile/{peer.did}/post/{result.platform_post_id.rsplit('/', 1)[1]}"

    await provider.publish(peer.context(), PublishRequest(text="second post", idempotency_key="tgt_second"))
    # connect logged in once; the account's first publish once; the second reused the kept session.
    assert peer.recorder.methods.count("com.atproto.server.createSession") == 2
    assert peer.post_count() == 2


async def test_a_mention_names_the_account_by_the_did_the_pds_resolves(peer: Peer) -> None:
    friend_did, _ = _new_account(peer.pds, "mentionedfriend.test")
    text = "Danke @MentionedFriend.test und @nobody-here.test!"
    result = await provider.publish(peer.context(), PublishRequest(text=text, idempotency_key="tgt_mention"))
    record = peer.record(result.platform_post_id)["value"]
    [mention] = record["facets"]  # the handle that names nobody stays plain text
    assert mention["features"] == [{"$type": "app.bsky.richtext.facet#mention", "did": friend_did}]
    assert text.encode()[mention["index"]["byteStart"] : mention["index"]["byteEnd"]].decode() == "@MentionedFriend.test"
    assert peer.recorder.methods.count("com.atproto.identity.resolveHandle") == 2


async def test_a_link_card_with_its_image_is_a_record_the_pds_accepts(peer: Peer) -> None:
    page = (
        "<html><head><meta property='og:title' content='Socialgate notes'>"
        "<meta property='og:description' content='What we shipped'><meta property='og:image' content='/thumb.png'></head></html>"
    )
    with scripted_server() as site:
        site.routes["/notes"] = Reply(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())
        site.routes["/thumb.png"] = Reply(200, {"Content-Type": "image/png"}, png(64, 32))
        link = site.url("/notes")
        result = await provider.publish(peer.context(), PublishRequest(text=f"Notes: {link}", idempotency_key="tgt_card"))
    external = peer.record(result.platform_post_id)["value"]["embed"]["external"]
    assert (external["uri"], external["title"], external["description"]) == (link, "Socialgate notes", "What we shipped")
    assert external["thumb"]["mimeType"] == "image/png" and external["thumb"]["size"] == len(png(64, 32))
    assert site.requested == ["/notes", "/thumb.png"]


async def test_publishes_a_thread_of_three_replying_to_root_and_parent(peer: Peer) -> None:
    request = PublishRequest(text="1/3 a thread", idempotency_key="tgt_thread", thread=(ThreadPart("2/3 middle"), ThreadPart("3/3 end")))
    result = await provider.publish(peer.context(), request)
    uris = [result.platform_post_id, *result.thread_post_ids]
    records = [peer.record(uri) for uri in uris]
    assert [r["value"]["text"] for r in records] == ["1/3 a thread", "2/3 middle", "3/3 end"]
    root = {"uri": records[0]["uri"], "cid": records[0]["cid"]}
    assert "reply" not in records[0]["value"]
    assert records[1]["value"]["reply"] == {"root": root, "parent": root}
    assert records[2]["value"]["reply"] == {"root": root, "parent": {"uri": records[1]["uri"], "cid": records[1]["cid"]}}
    assert await provider.reconcile(peer.context(), request) == result.__class__(
        platform_post_id=uris[0], url=result.url, raw={"uris": uris}, thread_post_ids=tuple(uris[1:])
    )


async def test_publishes_an_image_with_alt_text_as_an_uploaded_blob(peer: Peer) -> None:
    image = png(4, 3)
    media = PublishMedia(
        kind="image", mime_type="image/png", size_bytes=len(image), url="https://media.example/p.png",
        source=BytesSource(image), alt_text="three red pixels by four", width=4, height=3,
    )
    result = await provider.publish(peer.context(), PublishRequest(text="a picture", idempotency_key="tgt_image", media=(media,)))
    embed = peer.record(result.platform_post_id)["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    [entry] = embed["images"]
    assert entry["alt"] == "three red pixels by four"
    assert entry["aspectRatio"] == {"width": 4, "height": 3}
    assert (entry["image"]["mimeType"], entry["image"]["size"]) == ("image/png", len(image))
    blob = peer.get("com.atproto.sync.getBlob", did=peer.did, cid=entry["image"]["ref"]["$link"])
    assert blob.status_code == 200 and blob.content == image


async def test_a_retry_after_a_lost_answer_finds_the_post_instead_of_posting_again(peer: Peer) -> None:
    request = PublishRequest(text="exactly once", idempotency_key="tgt_once")
    first = await provider.publish(peer.context(), request)
    # The same attempt again, as after an answer lost on the way back: the PDS refuses a second
    # record at the planned key (500) and the provider finds the first one there.
    again = await provider.publish(peer.context(), request)
    assert again.platform_post_id == first.platform_post_id
    assert peer.post_count() == 1
    assert (await provider.reconcile(peer.context(), request)).platform_post_id == first.platform_post_id
    assert await provider.reconcile(peer.context(), PublishRequest(text="never sent", idempotency_key="tgt_never")) is None


async def test_a_refused_access_token_is_renewed_with_the_refresh_token(peer: Peer) -> None:
    await provider.publish(peer.context(), PublishRequest(text="before", idempotency_key="tgt_before"))
    store = peer.context().store
    kept = await store.get(SESSION, peer.pds.url)
    corrupted = kept["accessJwt"][:-4] + "AAAA"
    await store.put(SESSION, peer.pds.url, {**kept, "accessJwt": corrupted})
    peer.recorder.methods.clear()
    await provider.publish(peer.context(), PublishRequest(text="after", idempotency_key="tgt_after"))
    assert peer.recorder.methods == [
        "com.atproto.repo.createRecord",  # 400 InvalidToken
        "com.atproto.server.refreshSession",
        "com.atproto.repo.createRecord",
    ]
    renewed = await store.get(SESSION, peer.pds.url)
    assert renewed["accessJwt"] != corrupted and renewed["refreshJwt"] != kept["refreshJwt"]
    assert await store.get(PUBLISH_PLAN, "tgt_after") is not None
    assert peer.post_count() == 2


async def test_deletes_a_post_and_deleting_it_again_succeeds(peer: Peer) -> None:
    result = await provider.publish(peer.context(), PublishRequest(text="short-lived", idempotency_key="tgt_delete"))
    await provider.delete(peer.context(), result.platform_post_id)
    repo, _, rkey = result.platform_post_id.removeprefix("at://").split("/")
    gone = peer.get("com.atproto.repo.getRecord", repo=repo, collection=POST, rkey=rkey)
    assert gone.status_code == 400 and gone.json()["error"] == "RecordNotFound"
    await provider.delete(peer.context(), result.platform_post_id)


async def test_metrics_need_an_app_view_which_a_bare_pds_does_not_have(peer: Peer) -> None:
    # getPosts is an AppView method the PDS proxies; this PDS has no AppView configured, so it
    # refuses it, and the answer maps to Rejected. The figures are tested on replayed answers.
    result = await provider.publish(peer.context(), PublishRequest(text="count me", idempotency_key="tgt_metrics"))
    with pytest.raises(Rejected) as refused:
        await provider.fetch_metrics(peer.context(), [result.platform_post_id])
    assert refused.value.code == "INVALID_REQUEST"
    assert "No service configured for app.bsky.feed.getPosts" in refused.value.message
