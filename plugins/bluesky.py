"""Bluesky (the AT Protocol) as a socialgate provider: app-password sessions against a PDS.

Everything goes through the account's PDS (``service``, https://bsky.social by default) over
XRPC: ``com.atproto.server.createSession`` / ``refreshSession`` for tokens,
``com.atproto.repo.createRecord`` for ``app.bsky.feed.post`` records, ``uploadBlob`` for images,
``deleteRecord``, ``getRecord``, and ``app.bsky.feed.getPosts`` (which the PDS proxies to the
AppView) for metrics.

Why it is built the way it is:

- **Sessions are kept** in ``ctx.store`` per PDS URL: createSession is limited to 30 per 5
  minutes and 300 a day per account, so publishing must not log in each time. An expired or
  refused access token is renewed once with refreshSession, then with createSession.
- **A retry can never post twice.** Before anything is sent, the first attempt fixes the post's
  record keys (TIDs: the first attempt's time, and a clock id from the idempotency key) in
  ``ctx.store``; every retry sends ``createRecord`` with the same ``rkey``. A record already at
  that key makes the PDS answer 500 (the repository refuses a second value for a key), so a 5xx
  is followed by ``getRecord``: if the record is there, it is the post. ``reconcile`` reads the
  same keys back. Hash-only keys would need no store, but ``app.bsky.feed.post`` keys must be
  TIDs (the PDS checks), and a TID is a timestamp a hash cannot honestly supply.
- **Links are facets**: Bluesky does not link URLs in text by itself; each link (and hashtag)
  gets a facet whose offsets count UTF-8 bytes, end exclusive.
- **Mentions are facets too**, which name the account by its DID: each ``@handle`` is resolved
  through the PDS (``com.atproto.identity.resolveHandle``). A handle that resolves to nobody
  stays plain text, as in the Bluesky app; a PDS that cannot answer fails the attempt, which is
  retried, rather than post a mention that notifies nobody.
- **A link gets a card** (``app.bsky.embed.external``) in a post without images, as the
  Bluesky app makes one: the first link's page title, description and image
  (``providers.link_preview``), the image uploaded as a blob. A page that cannot be read leaves
  the post without a card, never without the post. The ``link_card`` setting turns it off.
- The XRPC error word decides the typed error, not only the status: the PDS answers an expired
  token with **400** ``ExpiredToken``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    AuthExpired,
    Capabilities,
    CredentialField,
    Issue,
    Limits,
    MetricSnapshot,
    MetricsSpec,
    PostDraft,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Quota,
    Rejected,
    SettingField,
    TextLimit,
    TextUnit,
    hookimpl,
    reported,
)
from providers.http import json_object, raise_for_response, retry_after_seconds, send
from providers.link_preview import fetch_image, fetch_preview
from providers.text import find_urls
from providers.threads import PostedPart, publish_thread

DEFAULT_SERVICE = "https://bsky.social"
POST = "app.bsky.feed.post"
WEB_POST_URL = "https://bsky.app/profile/{did}/post/{rkey}"  # the DID, not the handle: handles change
SESSION = "session"  # ctx.store kind: PDS URL → the session's tokens
PUBLISH_PLAN = "publish_plan"  # ctx.store kind: idempotency key → the DID and time that fix the rkeys
GET_POSTS_BATCH = 25  # app.bsky.feed.getPosts takes at most 25 uris
MAX_LANGS = 3  # post.json: langs maxLength 3
MAX_BLOB_BYTES = 1_000_000  # embed/images.json and embed/external.json: an image blob's maxSize
CARD_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Error words that mean the session (or the account) is no longer usable.
TOKEN_WORDS = frozenset({"ExpiredToken", "InvalidToken"})
ACCOUNT_WORDS = frozenset({"AccountTakedown", "AccountDeactivated", "AuthFactorTokenRequired"})
AUTH_WORDS = TOKEN_WORDS | ACCOUNT_WORDS | {"AuthenticationRequired", "AuthMissing"}

IDENTIFIER = r"@?(?:did:(?:plc|web):[A-Za-z0-9._:%-]+|(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
APP_PASSWORD = r"[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}"
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
# Bluesky's hashtag rule, simplified: after a space or the start, '#' then a word that is not
# only digits; trailing punctuation is not part of the tag; at most 64 characters.
HASHTAG = re.compile(r"(?<!\S)[#\uFF03]((?:\w|[-'\u2019])*[^\W\d_](?:\w|[-'\u2019])*)")
MAX_TAG_LENGTH = 64
# atproto's handle specification refuses these top-level domains.
DISALLOWED_HANDLE_TLDS = frozenset({"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"})
# A mention as the Bluesky app finds one: '@' at the start or after a space or '(', then a
# handle, which is a domain name (labels, the last starting with a letter).
MENTION = re.compile(
    r"(?:^|(?<=[\s(]))@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
)
AT_URI = re.compile(r"at://(?P<repo>did:[a-z]+:[A-Za-z0-9._:%-]+)/(?P<collection>[a-zA-Z0-9.-]+)/(?P<rkey>[A-Za-z0-9._:~-]+)")


# -- errors ------------------------------------------------------------------------------------


def _xrpc_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """The XRPC error word and message of a failed response (``{"error": …, "message": …}``)."""
    body = json_object(response) or {}
    word, message = body.get("error"), body.get("message")
    return (word if isinstance(word, str) else None), (message if isinstance(message, str) else None)


def _upper_snake(word: str) -> str:
    """``ExpiredToken`` → ``EXPIRED_TOKEN``: the SDK's stable code for a platform word."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", word).upper()


def _rate_limit_wait(response: httpx.Response, now: datetime) -> float | None:
    """Seconds to wait on a 429: Retry-After when sent, else the ``ratelimit-reset`` epoch second."""
    wait = retry_after_seconds(response, now)
    reset = response.headers.get("ratelimit-reset", "").strip()
    if wait is None and reset.isdigit():
        wait = max(0.0, int(reset) - now.timestamp())
    return wait


def raise_for_xrpc(response: httpx.Response, now: datetime) -> None:
    """Raise the SDK error an XRPC failure stands for; return quietly on 2xx.

    Session and account words (``ExpiredToken`` arrives as a 400) are ``AuthExpired``; otherwise
    429 is ``RateLimited``, 5xx ``TransientError`` and any other 4xx ``Rejected`` with the word.
    """
    if response.is_success:
        return
    word, message = _xrpc_error(response)
    code = _upper_snake(word) if word else None
    if word in AUTH_WORDS:
        raise AuthExpired(message or word, code=code, http_status=response.status_code, raw=response.text[:2000])
    wait = _rate_limit_wait(response, now) if response.status_code == 429 else None
    raise_for_response(response, code=code, message=message, retry_after=wait)


def _needs_new_session(response: httpx.Response) -> bool:
    word, _ = _xrpc_error(response)
    return word in TOKEN_WORDS or (response.status_code == 401 and word not in ACCOUNT_WORDS)


# -- record keys and text ----------------------------------------------------------------------

_S32 = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable, as atproto writes TIDs


def tid(micros: int, clock_id: int) -> str:
    """An atproto TID: 53 bits of microseconds since the epoch and a 10-bit clock id, 13 characters."""
    value = (micros << 10) | (clock_id & 0x3FF)
    return "".join(_S32[(value >> shift) & 31] for shift in range(60, -1, -5))


def _clock_id(idempotency_key: str) -> int:
    return int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:2], "big") & 0x3FF


def _byte_span(text: str, start: int, end: int) -> dict[str, int]:
    """A facet index: the UTF-8 byte offsets of ``text[start:end]``, end exclusive."""
    byte_start = len(text[:start].encode())
    return {"byteStart": byte_start, "byteEnd": byte_start + len(text[start:end].encode())}


def _mentions(text: str, links: Sequence[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """(start, end, lower-cased handle) of each mention outside the links."""
    found = []
    for match in MENTION.finditer(text):
        start, end = match.span()
        if not any(s < end and start < e for s, e in links):
            found.append((start, end, match.group(1).lower()))
    return found


def mentioned_handles(text: str) -> list[str]:
    """The handles ``text`` mentions (``@alice.bsky.social``), lower-cased, each once, in order.

    Handles under a top-level domain that atproto never allows (``.local``, ``.example`` …) are
    left out: no account can have one, so there is nothing to ask the PDS.
    """
    handles = (handle for _, _, handle in _mentions(text, find_urls(text)))
    return list(dict.fromkeys(h for h in handles if h.rsplit(".", 1)[1] not in DISALLOWED_HANDLE_TLDS))


def facets(text: str, dids: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Link facets for every URL, tag facets for every hashtag and mention facets for every
    ``@handle`` found in ``dids`` (handle → DID), in text order.

    A bare host (``example.com/x``) is linked as https. Hashtags inside a link are left alone.
    """
    found: list[tuple[int, dict[str, Any]]] = []
    links = find_urls(text)
    for start, end, handle in _mentions(text, links):
        if did := (dids or {}).get(handle):
            feature = {"$type": "app.bsky.richtext.facet#mention", "did": did}
            found.append((start, {"index": _byte_span(text, start, end), "features": [feature]}))
    for start, end in links:
        uri = text[start:end]
        if not re.match(r"https?://", uri, re.IGNORECASE):
            uri = "https://" + uri
        feature = {"$type": "app.bsky.richtext.facet#link", "uri": uri}
        found.append((start, {"index": _byte_span(text, start, end), "features": [feature]}))
    for match in HASHTAG.finditer(text):
        start, end = match.span()
        tag = match.group(1)
        if len(tag) > MAX_TAG_LENGTH or any(s < end and start < e for s, e in links):
            continue
        feature = {"$type": "app.bsky.richtext.facet#tag", "tag": tag}
        found.append((start, {"index": _byte_span(text, start, end), "features": [feature]}))
    return [facet for _, facet in sorted(found, key=lambda item: item[0])]


def _first_link(found: Sequence[dict[str, Any]]) -> str | None:
    """The URI of the first link facet, in text order."""
    for facet in found:
        for feature in facet["features"]:
            if feature["$type"] == "app.bsky.richtext.facet#link":
                return str(feature["uri"])
    return None


def _langs(settings: Mapping[str, Any]) -> list[str]:
    value = settings.get("langs") or ""
    return [tag.strip() for tag in str(value).split(",") if tag.strip()]


def _iso_millis(moment: datetime) -> str:
    """``2026-01-15T12:00:00.000Z``: the datetime form atproto records use."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_post_uri(uri: str) -> tuple[str, str, str]:
    """(repo DID, collection, rkey) of a post's at:// URI; ``Rejected`` for anything else."""
    match = AT_URI.fullmatch(uri)
    if match is None or match["collection"] != POST:
        raise Rejected("INVALID_POST_ID", f"{uri[:200]!r} is not the at:// URI of a Bluesky post")
    return match["repo"], match["collection"], match["rkey"]


def _web_url(uri: str) -> str:
    repo, _, rkey = parse_post_uri(uri)
    return WEB_POST_URL.format(did=repo, rkey=rkey)


# -- sessions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """An app-password session on one PDS."""

    did: str
    handle: str
    access_jwt: str
    refresh_jwt: str

    @classmethod
    def from_answer(cls, body: Mapping[str, Any]) -> Session:
        return cls(str(body["did"]), str(body.get("handle") or body["did"]), str(body["accessJwt"]), str(body["refreshJwt"]))

    def as_record(self) -> dict[str, str]:
        return {"did": self.did, "handle": self.handle, "accessJwt": self.access_jwt, "refreshJwt": self.refresh_jwt}


def service_url(credentials: Mapping[str, Any]) -> str:
    return str(credentials.get("service") or DEFAULT_SERVICE).rstrip("/")


class Xrpc:
    """XRPC calls to the account's PDS with its session: kept in the store, renewed when refused."""

    def __init__(self, ctx: ProviderContext, credentials: Mapping[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.credentials = ctx.credentials if credentials is None else credentials
        self.service = service_url(self.credentials)
        self._session: Session | None = None

    def url(self, nsid: str) -> str:
        return f"{self.service}/xrpc/{nsid}"

    async def session(self) -> Session:
        """The kept session for this PDS, or a new one."""
        if self._session is None:
            kept = await self.ctx.store.get(SESSION, self.service) if self.ctx.account_id else None
            self._session = Session.from_answer(kept) if kept else await self.login()
        return self._session

    async def login(self) -> Session:
        """createSession with the app password (the heavily rate-limited call)."""
        identifier = str(self.credentials.get("identifier") or "").removeprefix("@")
        body = {"identifier": identifier, "password": str(self.credentials.get("app_password") or "")}
        response = await send(self.ctx, "POST", self.url("com.atproto.server.createSession"), json=body)
        raise_for_xrpc(response, self.ctx.now())
        return await self._keep(Session.from_answer(response.json()))

    async def renew(self, session: Session) -> Session:
        """refreshSession; when the refresh token is refused too, createSession."""
        response = await send(
            self.ctx, "POST", self.url("com.atproto.server.refreshSession"), headers=_bearer(session.refresh_jwt)
        )
        if response.status_code in (400, 401) and _xrpc_error(response)[0] not in ACCOUNT_WORDS:
            return await self.login()
        raise_for_xrpc(response, self.ctx.now())
        return await self._keep(Session.from_answer(response.json()))

    async def _keep(self, session: Session) -> Session:
        # Only for a connected account: the store of a connect call (no account yet) is shared.
        if self.ctx.account_id:
            await self.ctx.store.put(SESSION, self.service, session.as_record())
        self._session = session
        return session

    async def call(
        self, method: str, nsid: str, *, publishes: bool = False, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """An authenticated call; a refused token is renewed once and the call sent again.

        Sending again is safe even for createRecord: a PDS checks the token before anything else.
        """
        session = await self.session()
        for attempt in range(2):
            all_headers = {**(headers or {}), **_bearer(session.access_jwt)}
            response = await send(self.ctx, method, self.url(nsid), publishes=publishes, headers=all_headers, **kwargs)
            if attempt == 1 or not _needs_new_session(response):
                break
            session = await self.renew(session)
        return response

    async def resolve_handles(self, handles: Sequence[str], known: dict[str, str | None]) -> dict[str, str]:
        """Handle → DID for each of ``handles`` that names an account; ``known`` keeps the answers.

        The PDS answers ``InvalidRequest`` ("Unable to resolve handle") for a handle that names
        nobody; any other failure is raised, for the attempt to be retried.
        """
        for handle in handles:
            if handle in known:
                continue
            response = await send(self.ctx, "GET", self.url("com.atproto.identity.resolveHandle"), params={"handle": handle})
            if response.status_code == 400 and _xrpc_error(response)[0] == "InvalidRequest":
                known[handle] = None
                continue
            raise_for_xrpc(response, self.ctx.now())
            did = (json_object(response) or {}).get("did")
            known[handle] = did if isinstance(did, str) and did.startswith("did:") else None
        return {handle: did for handle in handles if (did := known[handle])}

    async def get_record(self, uri: str) -> dict[str, Any] | None:
        """The record at ``uri`` (``{uri, cid, value}``), or None when the PDS has none there."""
        repo, collection, rkey = parse_post_uri(uri)
        params = {"repo": repo, "collection": collection, "rkey": rkey}
        response = await send(self.ctx, "GET", self.url("com.atproto.repo.getRecord"), params=params)
        if response.status_code == 400 and _xrpc_error(response)[0] == "RecordNotFound":
            return None
        raise_for_xrpc(response, self.ctx.now())
        return dict(response.json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the provider ------------------------------------------------------------------------------


@dataclass
class _ReplyRefs:
    """What one publish attempt knows of the posts it replies to: uri → (strong ref, root ref)."""

    refs: dict[str, tuple[dict[str, str], dict[str, str]]]

    async def reply_to(self, xrpc: Xrpc, parent_uri: str) -> dict[str, dict[str, str]]:
        if parent_uri not in self.refs:
            found = await xrpc.get_record(parent_uri)
            if found is None:
                raise Rejected("REPLY_TARGET_NOT_FOUND", f"the post {parent_uri} to reply to does not exist")
            parent = {"uri": str(found["uri"]), "cid": str(found["cid"])}
            root = (found.get("value") or {}).get("reply", {}).get("root") or parent
            self.refs[parent_uri] = (parent, {"uri": str(root["uri"]), "cid": str(root["cid"])})
        parent, root = self.refs[parent_uri]
        return {"root": root, "parent": parent}


class Bluesky(Provider):
    id = "bluesky"
    name = "Bluesky"
    approval = "None: any account, with an app password (Settings → Privacy and security → App passwords)."
    description = "Posts, threads and images on Bluesky (any AT Protocol PDS) with an app password."
    capabilities = Capabilities(threads=True, delete=True, metrics=True, reconcile=True)
    # getPosts' counts are optional in the lexicon: an absent one is None. No views or reach.
    metrics = MetricsSpec(
        post=("likes", "comments", "reposts", "quotes", "saves"),
        account=("followers", "following", "posts"),
        batch_size=GET_POSTS_BATCH,
        min_interval_seconds=300,
    )
    limits = Limits(
        # post.json: text maxGraphemes 300 and maxLength 3000 (atproto string lengths are UTF-8 bytes).
        max_text_length=300,
        text_unit=TextUnit.GRAPHEMES,
        extra_text_limits=(TextLimit(3000, TextUnit.UTF8_BYTES),),
        # embed/images.json: at most 4 images of at most 1,000,000 bytes each.
        max_media=4,
        media_kinds=frozenset({"image"}),
        max_media_bytes={"image": MAX_BLOB_BYTES},
        max_thread_parts=25,  # ours: the protocol has no cap, a reader's patience has
        quotas=(
            Quota(1666, 3600, description="5,000 repo write points an hour; a post costs 3"),
            Quota(11666, 86400, description="35,000 repo write points a day; a post costs 3"),
        ),
    )
    auth = (
        CredentialField(
            "service", "PDS URL", kind="url", required=False, default=DEFAULT_SERVICE, loopback_http=True,
            help="Where the account lives; bsky.social for accounts made in the Bluesky app. "
            "Plain http is accepted only for a PDS on this machine (development and tests).",
        ),
        CredentialField("identifier", "Handle or DID", pattern=IDENTIFIER, help="alice.bsky.social or did:plc:…"),
        CredentialField(
            "app_password", "App password", secret=True, pattern=APP_PASSWORD,
            help="Settings → Privacy and security → App passwords; never the account's own password.",
        ),
    )
    settings = (
        SettingField("langs", "Languages", help=f"Up to {MAX_LANGS} comma-separated language tags, e.g. en or en,pt-BR."),
        SettingField(
            "link_card", "Link card", type="boolean", default=True,
            help="Show the first link's page (title, description, image) as a card under a post without images.",
        ),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        langs = _langs(draft.settings)
        if len(langs) > MAX_LANGS or not all(LANGUAGE_TAG.fullmatch(tag) for tag in langs):
            return [Issue(("settings", "langs"), "SETTING_INVALID", f"Languages must be at most {MAX_LANGS} language tags such as en or pt-BR.")]
        return []

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """Log in with the app password: the session names the account (its DID) and its handle."""
        session = await Xrpc(ctx, credentials).login()
        return AccountProfile(external_id=session.did, handle=session.handle, display_name=session.handle, raw={"did": session.did})

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        xrpc = Xrpc(ctx)
        session = await xrpc.session()
        plan = await self._plan(ctx, request, session.did)
        thread = _ReplyRefs(refs={})
        langs = _langs(request.settings)
        resolved: dict[str, str | None] = {}  # handle → DID, once per publish
        cards = request.settings.get("link_card", True) is not False

        async def post_part(index: int, text: str, media: tuple[PublishMedia, ...], reply_to: str | None) -> PostedPart:
            record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": _created_at(plan, index)}
            dids = await xrpc.resolve_handles(mentioned_handles(text), resolved)
            if found := facets(text, dids):
                record["facets"] = found
            if media:
                record["embed"] = await self._images(xrpc, media)
            elif cards and (link := _first_link(found)) and (card := await self._link_card(xrpc, link)):
                record["embed"] = card
            if reply_to is not None:
                record["reply"] = await thread.reply_to(xrpc, reply_to)
            if langs:
                record["langs"] = langs
            answer = await self._create(xrpc, plan["did"], _rkey(plan, request.idempotency_key, index), record)
            uri, cid = str(answer["uri"]), str(answer["cid"])
            root = record["reply"]["root"] if "reply" in record else {"uri": uri, "cid": cid}
            thread.refs[uri] = ({"uri": uri, "cid": cid}, root)
            return PostedPart(uri, _web_url(uri), answer)

        return await publish_thread(ctx, request, post_part)

    async def _plan(self, ctx: ProviderContext, request: PublishRequest, did: str) -> dict[str, Any]:
        """The DID and first-attempt time that fix this request's rkeys, stored before any post is sent."""
        plan = await ctx.store.get(PUBLISH_PLAN, request.idempotency_key)
        if plan is None:
            plan = {"did": did, "micros": (ctx.now() - EPOCH) // timedelta(microseconds=1)}
            await ctx.store.put(PUBLISH_PLAN, request.idempotency_key, plan)
        return plan

    async def _create(self, xrpc: Xrpc, did: str, rkey: str, record: dict[str, Any]) -> dict[str, Any]:
        """createRecord at ``rkey``; on a 5xx, the record may be there already (an earlier attempt's)."""
        body = {"repo": did, "collection": POST, "rkey": rkey, "record": record}
        response = await xrpc.call("POST", "com.atproto.repo.createRecord", publishes=True, json=body)
        if response.status_code >= 500:
            existing = await xrpc.get_record(f"at://{did}/{POST}/{rkey}")
            if existing is not None:
                xrpc.ctx.log.info("the post was already at its record key; not sending it again")
                return existing
        raise_for_xrpc(response, xrpc.ctx.now())
        return dict(response.json())

    async def _images(self, xrpc: Xrpc, media: Sequence[PublishMedia]) -> dict[str, Any]:
        """Upload each image with uploadBlob and embed them with their alt text (and aspect ratio)."""
        images = []
        for item in media:
            data = await item.source.read()
            response = await xrpc.call("POST", "com.atproto.repo.uploadBlob", content=data, headers={"Content-Type": item.mime_type})
            raise_for_xrpc(response, xrpc.ctx.now())
            image: dict[str, Any] = {"alt": item.alt_text, "image": response.json()["blob"]}
            if item.width and item.height:
                image["aspectRatio"] = {"width": item.width, "height": item.height}
            images.append(image)
        return {"$type": "app.bsky.embed.images", "images": images}

    async def _link_card(self, xrpc: Xrpc, uri: str) -> dict[str, Any] | None:
        """The external embed for ``uri``, with its image as a blob when there is one; None without a page."""
        preview = await fetch_preview(xrpc.ctx, uri)
        if preview is None:
            return None
        external: dict[str, Any] = {"uri": uri, "title": preview.title, "description": preview.description}
        image = await fetch_image(xrpc.ctx, preview.image_url, max_bytes=MAX_BLOB_BYTES, mime_types=CARD_IMAGE_TYPES) if preview.image_url else None
        if image is not None:
            response = await xrpc.call("POST", "com.atproto.repo.uploadBlob", content=image.data, headers={"Content-Type": image.mime_type})
            if response.is_success:
                external["thumb"] = response.json()["blob"]
            elif response.status_code >= 500 or response.status_code == 429:
                raise_for_xrpc(response, xrpc.ctx.now())  # the PDS is failing: the post would too
            # else the PDS refused this image (a 4xx): the card goes without it
        return {"$type": "app.bsky.embed.external", "external": external}

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """The post and its thread when every part is at its planned record key; else None.

        None is safe to act on: publishing the same request again resumes at the missing part,
        with the same record keys, so nothing is posted twice.
        """
        plan = await ctx.store.get(PUBLISH_PLAN, request.idempotency_key)
        if plan is None:  # the plan is stored before anything is sent: nothing was
            return None
        xrpc = Xrpc(ctx)
        uris = []
        for index in range(1 + len(request.thread)):
            uri = f"at://{plan['did']}/{POST}/{_rkey(plan, request.idempotency_key, index)}"
            if await xrpc.get_record(uri) is None:
                return None
            uris.append(uri)
        return PublishResult(platform_post_id=uris[0], url=_web_url(uris[0]), raw={"uris": uris}, thread_post_ids=tuple(uris[1:]))

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        repo, collection, rkey = parse_post_uri(platform_post_id)
        response = await Xrpc(ctx).call(
            "POST", "com.atproto.repo.deleteRecord", json={"repo": repo, "collection": collection, "rkey": rkey}
        )
        raise_for_xrpc(response, ctx.now())

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """``app.bsky.actor.getProfile`` of the session's DID: followers, follows and posts."""
        xrpc = Xrpc(ctx)
        session = await xrpc.session()
        response = await xrpc.call("GET", "app.bsky.actor.getProfile", params={"actor": session.did})
        raise_for_xrpc(response, ctx.now())
        profile = response.json()
        return AccountMetricSnapshot(
            captured_at=ctx.now(),
            followers=reported(profile.get("followersCount")),
            following=reported(profile.get("followsCount")),
            posts=reported(profile.get("postsCount")),
            raw={k: profile.get(k) for k in ("followersCount", "followsCount", "postsCount")},
        )

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        """Likes, replies, reposts, quotes and bookmarks from getPosts; Bluesky reports no views."""
        for uri in platform_post_ids:
            parse_post_uri(uri)
        xrpc = Xrpc(ctx)
        snapshots = []
        for start in range(0, len(platform_post_ids), GET_POSTS_BATCH):
            batch = platform_post_ids[start : start + GET_POSTS_BATCH]
            response = await xrpc.call("GET", "app.bsky.feed.getPosts", params=[("uris", uri) for uri in batch])
            raise_for_xrpc(response, ctx.now())
            for post in response.json().get("posts", []):
                snapshots.append(_snapshot(post, ctx.now()))
        return snapshots


def _rkey(plan: Mapping[str, Any], idempotency_key: str, index: int) -> str:
    return tid(int(plan["micros"]) + index, _clock_id(idempotency_key))


def _created_at(plan: Mapping[str, Any], index: int) -> str:
    # A millisecond apart, so a thread's parts sort in order wherever time decides.
    return _iso_millis(EPOCH + timedelta(microseconds=int(plan["micros"]), milliseconds=index))


def _snapshot(post: Mapping[str, Any], now: datetime) -> MetricSnapshot:
    counts = {name: post.get(name) for name in ("likeCount", "replyCount", "repostCount", "quoteCount", "bookmarkCount")}
    return MetricSnapshot(
        platform_post_id=str(post["uri"]),
        captured_at=now,
        likes=reported(counts["likeCount"]),
        comments=reported(counts["replyCount"]),
        reposts=reported(counts["repostCount"]),
        quotes=reported(counts["quoteCount"]),
        saves=reported(counts["bookmarkCount"]),
        raw=counts,
    )


@hookimpl
def register_providers() -> list[Provider]:
    return [Bluesky()]
