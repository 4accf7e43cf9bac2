"""Bluesky provider, replayed against a PDS's real XRPC requests and answers.

The answers are those an ``@atproto/pds`` 0.4 gives (recorded from the peer in tests/peers, and
its source for the rate-limit headers); getPosts follows ``app.bsky.feed.defs#postView``.
"""

import asyncio
import json
import tomllib
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from plugins.bluesky import PUBLISH_PLAN, SESSION, Bluesky, facets, tid
from providers import (
    AuthExpired,
    BytesSource,
    DraftMedia,
    PostDraft,
    PublishMedia,
    PublishRequest,
    RateLimited,
    Rejected,
    ThreadPart,
    TransientError,
    validate_credentials,
    validate_draft,
)
from providers.store import MemoryProviderStore
from providers.testing import FIXED_NOW, ErrorCase, ProviderConformance, RejectedDraft, call_scripted, reply
from providers.validation import publish_checked

PDS = "https://bsky.social/xrpc/"
DID = "did:plc:2axzpuoiwuuqtrp6f3wwgty3"
CREDENTIALS = {"service": "https://bsky.social", "identifier": "alice.bsky.social", "app_password": "zq7a-ggb6-6h6k-i4qi"}
KEPT = {"did": DID, "handle": "alice.bsky.social", "accessJwt": "access-1", "refreshJwt": "refresh-1"}
STORED = {(SESSION, "https://bsky.social"): KEPT}
KEY = "tgt_conformance0000000000001"
RKEYS = ["3mchjvhag22yq", "3mchjvhag23yq", "3mchjvhag24yq"]  # FIXED_NOW's microseconds, KEY's clock id
CREATED_AT = "2026-01-15T12:00:00.000Z"
provider = Bluesky()


def uri(rkey):
    return f"at://{DID}/app.bsky.feed.post/{rkey}"


def cid(n):
    return f"bafyreie76dzwyelbxe7dfojr35u4xbk4wbyigjyfd7jtqv66szgghpp6z{n}"


def created(rkey, n=1):
    return reply(200, json={"uri": uri(rkey), "cid": cid(n), "commit": {"cid": "bafyreig5rypkm72", "rev": "3n2ziqbqxjk2h"}, "validationStatus": "valid"})


def xrpc_error(status, word, message, headers=None):
    return reply(status, json={"error": word, "message": message}, headers=headers)


def session_answer(access, refresh):
    return reply(200, json={
        "accessJwt": access, "refreshJwt": refresh, "handle": "alice.bsky.social", "did": DID,
        "email": "alice@example.test", "emailConfirmed": False, "active": True,
    })


NOT_FOUND = xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri(RKEYS[0])}")
INTERNAL = xrpc_error(500, "InternalServerError", "Internal Server Error")


def run(operation, steps, store=None, credentials=CREDENTIALS):
    outcome = asyncio.run(call_scripted(provider, steps, operation, credentials=credentials, store=store))
    return outcome


def publishing(request):
    return lambda ctx: publish_checked(provider, ctx, request)


def body(request):
    return json.loads(request.content)


# What each error case's flow sends, beyond the successful publish's one createRecord.
CREATE_RECORD = "POST https://bsky.social/xrpc/com.atproto.repo.createRecord"
GET_RECORD = "GET https://bsky.social/xrpc/com.atproto.repo.getRecord"
CREATE_SESSION = "POST https://bsky.social/xrpc/com.atproto.server.createSession"
REFRESH_SESSION = "POST https://bsky.social/xrpc/com.atproto.server.refreshSession"


class TestBlueskyConformance(ProviderConformance):
    provider = provider
    credentials = CREDENTIALS
    stored = STORED
    # No link card here: the card's page fetch is tested on its own below.
    request = PublishRequest(text="Ship it 🚀 https://example.com/notes", idempotency_key=KEY, settings={"link_card": False})
    success = [created(RKEYS[0])]
    expected_post_id = uri(RKEYS[0])
    expected_url = f"https://bsky.app/profile/{DID}/post/{RKEYS[0]}"
    error_cases = [
        ErrorCase(
            "429 with RateLimit-Reset",
            [xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers={
                "RateLimit-Limit": "5000", "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(int(FIXED_NOW.timestamp()) + 120), "RateLimit-Policy": "5000;w=3600",
            })],
            RateLimited, code="RATE_LIMIT_EXCEEDED", retry_after=120,
        ),
        ErrorCase("429 with Retry-After", [xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers={"Retry-After": "30"})], RateLimited, retry_after=30),
        ErrorCase(
            "createSession 429 when no session is kept",
            [xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers={"RateLimit-Reset": str(int(FIXED_NOW.timestamp()) + 300), "RateLimit-Policy": "30;w=300"})],
            RateLimited, retry_after=300, stored={}, sends=[CREATE_SESSION],
        ),
        ErrorCase(
            "500, and the record is not at its key", [INTERNAL, NOT_FOUND], TransientError, code="INTERNAL_SERVER_ERROR",
            sends=[CREATE_RECORD, GET_RECORD],
        ),
        ErrorCase(
            "502 from a proxy", [reply(502, text="Bad Gateway"), NOT_FOUND], TransientError, code="HTTP_502",
            sends=[CREATE_RECORD, GET_RECORD],
        ),
        ErrorCase(
            "400 InvalidRequest: too many graphemes",
            [xrpc_error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: grapheme too big (maximum 300, got 301) at $.record.text")],
            Rejected, code="INVALID_REQUEST",
        ),
        ErrorCase(
            "400 InvalidRequest: invalid record key",
            [xrpc_error(400, "InvalidRequest", 'Invalid record key for app.bsky.feed.post: Invalid TID string (got "notatid") at $')],
            Rejected, code="INVALID_REQUEST",
        ),
        # A PDS says ExpiredToken with 400; an entryway in front of it may say it with 401.
        *(
            ErrorCase(f"{status} ExpiredToken, the refresh token revoked, the app password refused", [
                xrpc_error(status, "ExpiredToken", "Token has expired"),
                xrpc_error(status, "ExpiredToken", "Token has been revoked"),
                xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password"),
            ], AuthExpired, code="AUTHENTICATION_REQUIRED", sends=[CREATE_RECORD, REFRESH_SESSION, CREATE_SESSION])
            for status in (400, 401)
        ),
        ErrorCase("401 AccountTakedown", [xrpc_error(401, "AccountTakedown", "Account has been taken down")], AuthExpired, code="ACCOUNT_TAKEDOWN"),
        ErrorCase(
            "400 InvalidToken again after a renewed session",
            [
                xrpc_error(400, "InvalidToken", "Token could not be verified"),
                session_answer("access-2", "refresh-2"),
                xrpc_error(400, "InvalidToken", "Token could not be verified"),
            ],
            AuthExpired, code="INVALID_TOKEN", sends=[CREATE_RECORD, REFRESH_SESSION, CREATE_RECORD],
        ),
    ]
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # one grapheme, 18 UTF-8 bytes
    platform_rejects = [
        RejectedDraft("301 graphemes", PostDraft(text="a" * 301), "TEXT_TOO_LONG"),
        RejectedDraft("167 graphemes but 3006 bytes (the PDS: string too big)", PostDraft(text=family * 167), "TEXT_TOO_LONG"),
        RejectedDraft("five images", PostDraft(text="x", media=(DraftMedia("image", "image/png", 1000),) * 5), "TOO_MANY_MEDIA"),
        RejectedDraft("an image over 1,000,000 bytes", PostDraft(text="x", media=(DraftMedia("image", "image/jpeg", 1_000_001),)), "MEDIA_TOO_LARGE"),
        RejectedDraft("video is not an image embed", PostDraft(text="x", media=(DraftMedia("video", "video/mp4", 1000),)), "MEDIA_KIND_NOT_SUPPORTED"),
        RejectedDraft("four languages", PostDraft(text="x", settings={"langs": "en,de,fr,es"}), "SETTING_INVALID"),
        RejectedDraft("a language that is not a tag", PostDraft(text="x", settings={"langs": "english!"}), "SETTING_INVALID"),
    ]
    platform_accepts = [
        PostDraft(text=family * 166),  # 2,988 bytes: the PDS took it
        PostDraft(text="é" * 300),
        PostDraft(text="x", settings={"langs": "en, pt-BR"}),
    ]

    def check_published_requests(self, sent):
        (request,) = sent
        assert (request.method, str(request.url)) == ("POST", PDS + "com.atproto.repo.createRecord")
        assert request.headers["authorization"] == "Bearer access-1"
        assert request.headers["content-type"] == "application/json"
        assert body(request) == {
            "repo": DID,
            "collection": "app.bsky.feed.post",
            "rkey": RKEYS[0],
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "Ship it 🚀 https://example.com/notes",
                "createdAt": CREATED_AT,
                "facets": [{
                    "index": {"byteStart": 13, "byteEnd": 38},
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/notes"}],
                }],
            },
        }


# -- text ----------------------------------------------------------------------------------------


def test_link_facets_count_utf8_bytes_after_emoji_and_accents():
    text = "Grüße 👨‍👩‍👧 lies https://example.com/a?b=1. Danke"
    [facet] = facets(text)
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    # "Grüße " is 8 bytes, the family emoji 18, " lies " 6: the link starts at byte 32, not at
    # character 13 (Python) or UTF-16 unit 16 (JavaScript).
    assert (start, end) == (32, 57)
    assert text.encode()[start:end] == b"https://example.com/a?b=1"
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a?b=1"}]


def test_bare_hosts_are_linked_as_https_and_hashtags_get_tag_facets():
    text = "see example.org/docs, #launch day #2026 #x-ray! https://e.com/#frag"
    found = facets(text)
    assert [f["features"][0] for f in found] == [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/docs"},
        {"$type": "app.bsky.richtext.facet#tag", "tag": "launch"},
        {"$type": "app.bsky.richtext.facet#tag", "tag": "x-ray"},
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://e.com/#frag"},
    ]
    encoded = text.encode()
    assert [encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in found] == [
        "example.org/docs", "#launch", "#x-ray", "https://e.com/#frag",
    ]
    assert facets("no links here") == []


BOB = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
UNRESOLVED = xrpc_error(400, "InvalidRequest", "Unable to resolve handle")


def test_mentions_name_the_account_by_its_did_and_a_handle_that_names_nobody_stays_plain():
    text = "Danke @Bob.bsky.social & @ghost.bsky.social! cc (@bob.bsky.social) me@x.com @bob.example https://e.com/(@bob.bsky.social"
    outcome = run(
        publishing(PublishRequest(text=text, idempotency_key=KEY, settings={"link_card": False})),
        [reply(200, json={"did": BOB}), UNRESOLVED, created(RKEYS[0])],
        store=MemoryProviderStore(STORED),
    )
    assert outcome.error is None
    bob, ghost, create = outcome.sent
    # Each handle asked once, lower-cased; none inside the link, nor under a TLD no handle may have.
    assert [(r.method, str(r.url)) for r in (bob, ghost)] == [
        ("GET", PDS + "com.atproto.identity.resolveHandle?handle=bob.bsky.social"),
        ("GET", PDS + "com.atproto.identity.resolveHandle?handle=ghost.bsky.social"),
    ]
    found = body(create)["record"]["facets"]
    encoded = text.encode()
    assert [(encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"][0]) for f in found] == [
        ("@Bob.bsky.social", {"$type": "app.bsky.richtext.facet#mention", "did": BOB}),
        ("@bob.bsky.social", {"$type": "app.bsky.richtext.facet#mention", "did": BOB}),
        ("https://e.com/(@bob.bsky.social", {"$type": "app.bsky.richtext.facet#link", "uri": "https://e.com/(@bob.bsky.social"}),
    ]


def test_a_mention_the_pds_cannot_resolve_now_fails_the_attempt_before_anything_is_posted():
    outcome = run(
        publishing(PublishRequest(text="hi @bob.bsky.social", idempotency_key=KEY)),
        [INTERNAL],
        store=MemoryProviderStore(STORED),
    )
    assert isinstance(outcome.error, TransientError)
    assert [r.url.path for r in outcome.sent] == ["/xrpc/com.atproto.identity.resolveHandle"]


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Fallback title</title>
<meta property="og:title" content="Release notes &amp; more">
<meta property="og:description" content="  What changed
 in 2.0  ">
<meta property="og:image" content="/card.png"></head><body>…</body></html>"""
CARD_PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 60
CARD_BLOB = {"$type": "blob", "ref": {"$link": "bafkreihwihm6kpd6zuwhhlro75p5qks5qtrcu55jp3gddbfjsieiv7wuxm"}, "mimeType": "image/png", "size": len(CARD_PNG)}


def html(body, status=200):
    return reply(status, text=body, headers={"Content-Type": "text/html; charset=utf-8"})


def test_a_link_gets_a_card_with_the_pages_title_description_and_image():
    request = PublishRequest(text="Read https://example.com/notes and example.org too", idempotency_key=KEY)
    steps = [html(PAGE), httpx.Response(200, headers={"Content-Type": "image/png"}, content=CARD_PNG),
             reply(200, json={"blob": CARD_BLOB}), created(RKEYS[0])]
    outcome = run(publishing(request), steps, store=MemoryProviderStore(STORED))
    assert outcome.error is None
    page, image, upload, create = outcome.sent
    assert (page.method, str(page.url)) == ("GET", "https://example.com/notes")  # the first link
    assert str(image.url) == "https://example.com/card.png"  # relative to the page
    assert (str(upload.url), upload.headers["content-type"], upload.content) == (PDS + "com.atproto.repo.uploadBlob", "image/png", CARD_PNG)
    assert body(create)["record"]["embed"] == {
        "$type": "app.bsky.embed.external",
        "external": {"uri": "https://example.com/notes", "title": "Release notes & more", "description": "What changed in 2.0", "thumb": CARD_BLOB},
    }


def test_a_page_that_cannot_be_read_leaves_the_post_without_a_card_but_posts_it():
    for page in (html("gone", status=404), reply(200, text="plain"), httpx.ConnectTimeout("slow"), html("<p>no title</p>")):
        outcome = run(publishing(PublishRequest(text="see https://example.com/x", idempotency_key=KEY)), [page, created(RKEYS[0])],
                      store=MemoryProviderStore(STORED))
        assert outcome.error is None
        assert "embed" not in body(outcome.sent[-1])["record"]


def test_a_card_image_the_pds_refuses_is_left_out_and_one_too_large_is_not_uploaded():
    big = httpx.Response(200, headers={"Content-Type": "image/png"}, content=b"\0" * 1_000_001)
    steps = [html(PAGE), big, created(RKEYS[0])]
    outcome = run(publishing(PublishRequest(text="https://example.com/notes", idempotency_key=KEY)), steps, store=MemoryProviderStore(STORED))
    assert outcome.error is None and "thumb" not in body(outcome.sent[-1])["record"]["embed"]["external"]
    refused = xrpc_error(400, "InvalidRequest", "Unsupported image")
    steps = [html(PAGE), httpx.Response(200, headers={"Content-Type": "image/png"}, content=CARD_PNG), refused, created(RKEYS[0])]
    outcome = run(publishing(PublishRequest(text="https://example.com/notes", idempotency_key=KEY)), steps, store=MemoryProviderStore(STORED))
    assert outcome.error is None
    assert body(outcome.sent[-1])["record"]["embed"]["external"]["title"] == "Release notes & more"
    assert "thumb" not in body(outcome.sent[-1])["record"]["embed"]["external"]


def test_no_card_when_the_setting_is_off_or_the_post_has_images():
    off = PublishRequest(text="https://example.com/notes", idempotency_key=KEY, settings={"link_card": False})
    outcome = run(publishing(off), [created(RKEYS[0])], store=MemoryProviderStore(STORED))
    assert outcome.error is None and [r.url.path for r in outcome.sent] == ["/xrpc/com.atproto.repo.createRecord"]
    image = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    media = PublishMedia(kind="image", mime_type="image/png", size_bytes=len(image), url="https://m.example/a.png",
                         source=BytesSource(image), alt_text="a", width=1, height=1)
    with_image = PublishRequest(text="https://example.com/notes", idempotency_key=KEY, media=(media,))
    blob = {"$type": "blob", "ref": {"$link": "bafkrei"}, "mimeType": "image/png", "size": len(image)}
    outcome = run(publishing(with_image), [reply(200, json={"blob": blob}), created(RKEYS[0])], store=MemoryProviderStore(STORED))
    assert outcome.error is None and body(outcome.sent[-1])["record"]["embed"]["$type"] == "app.bsky.embed.images"


def test_record_keys_are_atproto_tids():
    # The same values as @atproto/common's TID.fromTime(micros, clockId).toString().
    assert tid(1768478400000000, 5) == "3mchjvhag2227"
    assert tid(1768478400000001, 1023) == "3mchjvhag23zz"


# -- credentials and connect ---------------------------------------------------------------------


def test_the_credentials_form_takes_a_pds_on_this_machine_but_not_plain_http_elsewhere():
    assert validate_credentials(provider, {"identifier": "@alice.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"}) == []
    assert validate_credentials(provider, {**CREDENTIALS, "service": "http://127.0.0.1:2583", "identifier": DID}) == []
    found = validate_credentials(provider, {"service": "http://pds.example", "identifier": "alice", "app_password": "my real password"})
    assert [(i.field[-1], i.code) for i in found] == [
        ("service", "CREDENTIAL_INVALID"), ("identifier", "CREDENTIAL_INVALID"), ("app_password", "CREDENTIAL_INVALID"),
    ]


def test_connect_logs_in_and_names_the_account_by_its_did():
    outcome = run(lambda ctx: provider.connect(ctx, {**CREDENTIALS, "identifier": "@alice.bsky.social"}), [session_answer("access-1", "refresh-1")])
    assert outcome.error is None
    assert (outcome.result.external_id, outcome.result.handle) == (DID, "alice.bsky.social")
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("POST", PDS + "com.atproto.server.createSession")
    assert "authorization" not in request.headers
    assert body(request) == {"identifier": "alice.bsky.social", "password": "zq7a-ggb6-6h6k-i4qi"}
    assert "refresh-1" not in repr(outcome.result)


def test_connect_refused_and_a_connect_without_an_account_keeps_no_session():
    refused = run(lambda ctx: provider.connect(ctx, CREDENTIALS), [xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")])
    assert isinstance(refused.error, AuthExpired) and refused.error.message == "Invalid identifier or password"

    store = MemoryProviderStore()

    async def connect_unbound(ctx):
        return await provider.connect(replace(ctx, account_id=None), CREDENTIALS)

    assert run(connect_unbound, [session_answer("access-1", "refresh-1")], store=store).error is None
    assert asyncio.run(store.list(SESSION)) == []


# -- sessions ------------------------------------------------------------------------------------


def test_a_publish_logs_in_once_and_the_next_reuses_the_kept_session():
    store = MemoryProviderStore()
    first = run(publishing(PublishRequest(text="one", idempotency_key="tgt_1")), [session_answer("access-1", "refresh-1"), created("3mchjvhag22lt")], store=store)
    assert first.error is None
    assert [str(r.url) for r in first.sent] == [PDS + "com.atproto.server.createSession", PDS + "com.atproto.repo.createRecord"]
    assert first.sent[1].headers["authorization"] == "Bearer access-1"
    assert asyncio.run(store.get(SESSION, "https://bsky.social")) == KEPT
    second = run(publishing(PublishRequest(text="two", idempotency_key="tgt_2")), [created("3mchjvhag22aa")], store=store)
    assert second.error is None
    assert [str(r.url) for r in second.sent] == [PDS + "com.atproto.repo.createRecord"]


def test_an_expired_token_is_refreshed_and_the_post_sent_again():
    store = MemoryProviderStore(STORED)
    outcome = run(
        publishing(PublishRequest(text="hello", idempotency_key=KEY)),
        [xrpc_error(400, "ExpiredToken", "Token has expired"), session_answer("access-2", "refresh-2"), created(RKEYS[0])],
        store=store,
    )
    assert outcome.error is None
    expired, refresh, again = outcome.sent
    assert (refresh.method, str(refresh.url)) == ("POST", PDS + "com.atproto.server.refreshSession")
    assert refresh.headers["authorization"] == "Bearer refresh-1" and refresh.content == b""
    assert again.headers["authorization"] == "Bearer access-2"
    assert body(again) == body(expired)
    assert asyncio.run(store.get(SESSION, "https://bsky.social"))["refreshJwt"] == "refresh-2"


def test_a_revoked_refresh_token_falls_back_to_logging_in():
    outcome = run(
        publishing(PublishRequest(text="hello", idempotency_key=KEY)),
        [
            xrpc_error(400, "ExpiredToken", "Token has expired"),
            xrpc_error(400, "ExpiredToken", "Token has been revoked"),
            session_answer("access-3", "refresh-3"),
            created(RKEYS[0]),
        ],
        store=MemoryProviderStore(STORED),
    )
    assert outcome.error is None
    assert [str(r.url).removeprefix(PDS) for r in outcome.sent] == [
        "com.atproto.repo.createRecord", "com.atproto.server.refreshSession", "com.atproto.server.createSession", "com.atproto.repo.createRecord",
    ]
    assert outcome.sent[3].headers["authorization"] == "Bearer access-3"


# -- publishing ----------------------------------------------------------------------------------


def test_images_are_uploaded_as_blobs_and_embedded_with_alt_text_and_language():
    image = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    media = PublishMedia(kind="image", mime_type="image/png", size_bytes=len(image), url="https://m.example/a.png",
                         source=BytesSource(image), alt_text="a red square", width=640, height=480)
    blob = {"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/png", "size": len(image)}
    request = PublishRequest(text="look", idempotency_key=KEY, media=(media,), settings={"langs": "en,pt-BR"})
    outcome = run(publishing(request), [reply(200, json={"blob": blob}), created(RKEYS[0])], store=MemoryProviderStore(STORED))
    assert outcome.error is None
    upload, create = outcome.sent
    assert (upload.method, str(upload.url)) == ("POST", PDS + "com.atproto.repo.uploadBlob")
    assert upload.headers["content-type"] == "image/png" and upload.headers["authorization"] == "Bearer access-1"
    assert upload.content == image
    assert body(create)["record"] == {
        "$type": "app.bsky.feed.post",
        "text": "look",
        "createdAt": CREATED_AT,
        "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "a red square", "image": blob, "aspectRatio": {"width": 640, "height": 480}}]},
        "langs": ["en", "pt-BR"],
    }


def test_a_thread_replies_to_its_root_and_parent_with_consecutive_record_keys():
    request = PublishRequest(text="1/3", idempotency_key=KEY, thread=(ThreadPart("2/3"), ThreadPart("3/3")))
    outcome = run(publishing(request), [created(RKEYS[0], 1), created(RKEYS[1], 2), created(RKEYS[2], 3)], store=MemoryProviderStore(STORED))
    assert outcome.error is None
    assert outcome.result.thread_post_ids == (uri(RKEYS[1]), uri(RKEYS[2]))
    records = [body(r)["record"] for r in outcome.sent]
    assert [body(r)["rkey"] for r in outcome.sent] == RKEYS
    assert [r["createdAt"] for r in records] == [CREATED_AT, "2026-01-15T12:00:00.001Z", "2026-01-15T12:00:00.002Z"]
    root = {"uri": uri(RKEYS[0]), "cid": cid(1)}
    assert "reply" not in records[0]
    assert records[1]["reply"] == {"root": root, "parent": root}
    assert records[2]["reply"] == {"root": root, "parent": {"uri": uri(RKEYS[1]), "cid": cid(2)}}


def test_a_failed_thread_resumes_at_the_failed_part_with_the_same_record_key():
    store = MemoryProviderStore(STORED)
    request = PublishRequest(text="1/2", idempotency_key=KEY, thread=(ThreadPart("2/2"),))
    failed = run(publishing(request), [created(RKEYS[0], 1), xrpc_error(503, "UpstreamFailure", "try later"), NOT_FOUND], store=store)
    assert isinstance(failed.error, TransientError)
    part_one = {"uri": uri(RKEYS[0]), "cid": cid(1), "value": {"$type": "app.bsky.feed.post", "text": "1/2", "createdAt": CREATED_AT}}
    resumed = run(publishing(request), [reply(200, json=part_one), created(RKEYS[1], 2)], store=store)
    assert resumed.error is None
    lookup, create = resumed.sent
    assert str(lookup.url) == PDS + f"com.atproto.repo.getRecord?repo={DID.replace(':', '%3A')}&collection=app.bsky.feed.post&rkey={RKEYS[0]}"
    assert body(create)["rkey"] == RKEYS[1]
    root = {"uri": uri(RKEYS[0]), "cid": cid(1)}
    assert body(create)["record"]["reply"] == {"root": root, "parent": root}
    assert resumed.result.platform_post_id == uri(RKEYS[0])


def test_a_post_already_at_its_record_key_is_found_not_posted_twice():
    # The PDS answers a second record at a taken key with 500; the record there is the post.
    existing = {"uri": uri(RKEYS[0]), "cid": cid(1), "value": {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": CREATED_AT}}
    outcome = run(publishing(PublishRequest(text="hello", idempotency_key=KEY)), [INTERNAL, reply(200, json=existing)], store=MemoryProviderStore(STORED))
    assert outcome.error is None
    assert outcome.result.platform_post_id == uri(RKEYS[0])
    assert [r.method for r in outcome.sent] == ["POST", "GET"]


def test_a_reply_to_an_earlier_post_uses_that_posts_thread_root():
    root = {"uri": uri("3aaaaaaaaaa22"), "cid": cid(7)}
    parent = {"uri": uri("3bbbbbbbbbb22"), "cid": cid(8),
              "value": {"$type": "app.bsky.feed.post", "text": "earlier", "createdAt": CREATED_AT, "reply": {"root": root, "parent": root}}}
    request = PublishRequest(text="a follow-up", idempotency_key=KEY, reply_to=parent["uri"])
    outcome = run(publishing(request), [reply(200, json=parent), created(RKEYS[0])], store=MemoryProviderStore(STORED))
    assert outcome.error is None
    assert body(outcome.sent[1])["record"]["reply"] == {"root": root, "parent": {"uri": parent["uri"], "cid": cid(8)}}


def test_a_timeout_after_sending_is_unconfirmed_and_the_plan_is_already_kept():
    store = MemoryProviderStore(STORED)
    outcome = run(publishing(PublishRequest(text="hello", idempotency_key=KEY)), [httpx.ReadTimeout("no answer")], store=store)
    assert outcome.error.__class__.__name__ == "Unconfirmed"
    assert asyncio.run(store.get(PUBLISH_PLAN, KEY)) == {"did": DID, "micros": 1768478400000000}


# -- reconcile, delete, metrics ------------------------------------------------------------------


def test_reconcile_finds_the_post_at_its_planned_key_or_says_none():
    request = PublishRequest(text="hello", idempotency_key=KEY)
    never_sent = run(lambda ctx: provider.reconcile(ctx, request), [], store=MemoryProviderStore(STORED))
    assert never_sent.result is None and never_sent.sent == []

    planned = {**STORED, (PUBLISH_PLAN, KEY): {"did": DID, "micros": 1768478400000000}}
    existing = {"uri": uri(RKEYS[0]), "cid": cid(1), "value": {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": CREATED_AT}}
    found = run(lambda ctx: provider.reconcile(ctx, request), [reply(200, json=existing)], store=MemoryProviderStore(planned))
    assert found.result.platform_post_id == uri(RKEYS[0])
    assert found.result.url == f"https://bsky.app/profile/{DID}/post/{RKEYS[0]}"
    missing = run(lambda ctx: provider.reconcile(ctx, request), [NOT_FOUND], store=MemoryProviderStore(planned))
    assert missing.error is None and missing.result is None


def test_delete_removes_the_record_and_refuses_what_is_not_a_post_uri():
    outcome = run(lambda ctx: provider.delete(ctx, uri(RKEYS[0])), [reply(200, json={})], store=MemoryProviderStore(STORED))
    assert outcome.error is None
    (request,) = outcome.sent
    assert (request.method, str(request.url)) == ("POST", PDS + "com.atproto.repo.deleteRecord")
    assert request.headers["authorization"] == "Bearer access-1"
    assert body(request) == {"repo": DID, "collection": "app.bsky.feed.post", "rkey": RKEYS[0]}
    wrong = run(lambda ctx: provider.delete(ctx, "https://bsky.app/profile/x/post/y"), [], store=MemoryProviderStore(STORED))
    assert isinstance(wrong.error, Rejected) and wrong.error.code == "INVALID_POST_ID" and wrong.sent == []


def post_view(rkey, likes, replies, reposts, quotes):
    return {
        "uri": uri(rkey), "cid": cid(1),
        "author": {"did": DID, "handle": "alice.bsky.social", "displayName": "Alice", "labels": [], "createdAt": "2025-01-01T00:00:00.000Z"},
        "record": {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": CREATED_AT, "langs": ["en"]},
        "replyCount": replies, "repostCount": reposts, "likeCount": likes, "quoteCount": quotes, "bookmarkCount": 0,
        "indexedAt": CREATED_AT, "viewer": {"threadMuted": False, "embeddingDisabled": False}, "labels": [],
    }


def test_metrics_read_getposts_in_batches_of_25_and_report_no_views():
    ids = [uri(tid(1768478400000000 + n, 7)) for n in range(26)]
    first_batch = [post_view(u.rsplit("/", 1)[1], 12, 3, 4, 1) for u in ids[:24]]  # one post was deleted
    outcome = run(
        lambda ctx: provider.fetch_metrics(ctx, ids),
        [reply(200, json={"posts": first_batch}), reply(200, json={"posts": [post_view(ids[25].rsplit("/", 1)[1], 0, 0, 0, 0)]})],
        store=MemoryProviderStore(STORED),
    )
    assert outcome.error is None
    first, second = outcome.sent
    assert first.method == "GET" and first.headers["authorization"] == "Bearer access-1"
    assert first.url.params.get_list("uris") == ids[:25] and second.url.params.get_list("uris") == ids[25:]
    assert str(first.url).startswith(PDS + "app.bsky.feed.getPosts?uris=at%3A%2F%2F")
    assert len(outcome.result) == 25
    snapshot = outcome.result[0]
    assert (snapshot.platform_post_id, snapshot.captured_at) == (ids[0], FIXED_NOW)
    assert (snapshot.likes, snapshot.comments, snapshot.reposts, snapshot.quotes, snapshot.saves) == (12, 3, 4, 1, 0)
    assert snapshot.views is None and snapshot.reach is None and snapshot.shares is None
    assert snapshot.raw == {"likeCount": 12, "replyCount": 3, "repostCount": 4, "quoteCount": 1, "bookmarkCount": 0}


def test_metrics_map_appview_errors():
    limited = run(
        lambda ctx: provider.fetch_metrics(ctx, [uri(RKEYS[0])]),
        [xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers={"RateLimit-Reset": str(int(FIXED_NOW.timestamp()) + 60)})],
        store=MemoryProviderStore(STORED),
    )
    assert isinstance(limited.error, RateLimited) and limited.error.retry_after == 60
    down = run(lambda ctx: provider.fetch_metrics(ctx, [uri(RKEYS[0])]), [xrpc_error(502, "UpstreamFailure", "Upstream Failure")], store=MemoryProviderStore(STORED))
    assert isinstance(down.error, TransientError) and down.error.code == "UPSTREAM_FAILURE"


# -- registration --------------------------------------------------------------------------------


def test_registered_as_a_plugin_through_the_entry_point_group():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["socialgate.providers"]["bluesky"] == "plugins.bluesky"
    from plugins import bluesky

    [registered] = bluesky.register_providers()
    assert isinstance(registered, Bluesky)
    assert validate_draft(registered, PostDraft(text="hi")) == []


@pytest.mark.parametrize("langs", ["", "en", "en,de,ja", "zh-Hant-TW"])
def test_language_settings_within_the_lexicon(langs):
    assert validate_draft(provider, PostDraft(text="hi", settings={"langs": langs})) == []


PROFILE = {
    "did": DID, "handle": "alice.bsky.social", "displayName": "Alice", "avatar": "https://cdn.bsky.app/img/avatar/plain/x@jpeg",
    "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False}, "indexedAt": CREATED_AT,
    "createdAt": "2025-01-01T00:00:00.000Z", "followersCount": 210, "followsCount": 88, "postsCount": 1024, "labels": [],
}


def test_account_metrics_read_the_sessions_profile():
    outcome = run(lambda ctx: provider.fetch_account_metrics(ctx), [reply(200, json=PROFILE)], store=MemoryProviderStore(STORED))
    (sent,) = outcome.sent
    assert str(sent.url) == f"{PDS}app.bsky.actor.getProfile?actor={DID.replace(':', '%3A')}"
    assert (outcome.result.followers, outcome.result.following, outcome.result.posts) == (210, 88, 1024)


# The conformance kit's metrics checks, on getPosts' and getProfile's real shapes.
TestBlueskyConformance.metrics_ids = [uri(RKEYS[0]), uri(RKEYS[1])]
TestBlueskyConformance.metrics_success = [reply(200, json={"posts": [post_view(RKEYS[0], 12, 3, 4, 1), post_view(RKEYS[1], 0, 0, 0, 0)]})]
TestBlueskyConformance.expected_metrics = {
    uri(RKEYS[0]): {"likes": 12, "comments": 3, "reposts": 4, "quotes": 1, "saves": 0},
    uri(RKEYS[1]): {"likes": 0, "comments": 0, "reposts": 0, "quotes": 0, "saves": 0},
}
# The lexicon makes every count optional: an AppView that leaves quoteCount out means unknown.
TestBlueskyConformance.metrics_omitting = [
    reply(200, json={"posts": [{k: v for k, v in post_view(RKEYS[0], 12, 3, 4, 1).items() if k != "quoteCount"}]})
]
TestBlueskyConformance.omitted_figure = (uri(RKEYS[0]), "quotes")
TestBlueskyConformance.account_metrics_success = [reply(200, json=PROFILE)]
TestBlueskyConformance.expected_account_metrics = {"followers": 210, "following": 88, "posts": 1024}
