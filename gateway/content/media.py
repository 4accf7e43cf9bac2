"""Media assets: uploaded or fetched files that posts attach and platforms pull by URL.

Bytes are streamed to a temporary file beside their final place, never held whole in memory: the
type is sniffed from the first bytes (and must agree with the declared one), the kind's byte cap
is enforced while reading, and the SHA-256 is computed on the way. Only then is the row written,
and the file renamed into place inside that transaction — so a row never names a missing file,
and a failure at any step leaves neither a row nor a file behind.

Files live under ``<data_dir>/media/<org>/<id>``, 0600 in 0700 directories. Each asset has an
unguessable access token (``gateway.content.media_tokens``: derived, stored only as a hash);
``/media/{id}/{token}/{filename}`` serves it to platforms that pull media from a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import quote, unquote

import anyio
import httpx
from sqlalchemy import Select, Text, cast, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import find_owned
from gateway.content.media_formats import (
    ACCEPTED_TYPES,
    GENERIC_MIME_TYPES,
    HEADER_BYTES,
    SNIFF_BYTES,
    MediaKind,
    MediaType,
    image_dimensions,
    normalize_mime,
    sniff_mime,
)
from gateway.content.media_tokens import access_token, token_hash
from gateway.content.posts import PENDING_STATUSES
from gateway.core import Page, PageRequest, UserError, is_id_of, new_id, paginate, utcnow
from gateway.outbound import UnsafeURL, fetch, guarded_client, validate_url
from gateway.settings import Settings
from gateway.storage import (
    DIRECTORY_MODE,
    Database,
    MediaAsset,
    Post,
    Target,
    make_private_directories,
    private_opener,
    restrict,
    run_idempotent,
)

MiB = 1024 * 1024
CHUNK_SIZE = 64 * 1024
MAX_ALT_TEXT_LENGTH = 1000
MAX_FILENAME_STEM = 100
# A download that is still trickling in after this long is abandoned (a slow-loris source).
FETCH_DEADLINE_SECONDS = 120.0
MEDIA_DIRECTORY = "media"
UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
# Compared against when an id has no row, so a miss costs what a hit costs.
_NO_TOKEN_HASH = token_hash(secrets.token_urlsafe(32))


@dataclass(frozen=True)
class MediaLimits:
    """The largest file accepted per kind. Every cap stays under 2 GiB (a GraphQL Int)."""

    max_bytes: Mapping[MediaKind, int]

    def cap(self, kind: MediaKind) -> int:
        return self.max_bytes[kind]

    def cap_for_declared(self, declared_mime: str) -> int:
        """The cap that applies before the content is seen: the declared kind's, or the largest."""
        media_type = ACCEPTED_TYPES.get(declared_mime)
        return self.cap(media_type.kind) if media_type else max(self.max_bytes.values())


DEFAULT_LIMITS = MediaLimits(
    {MediaKind.IMAGE: 10 * MiB, MediaKind.GIF: 15 * MiB, MediaKind.VIDEO: 1024 * MiB, MediaKind.DOCUMENT: 100 * MiB}
)


@dataclass(frozen=True)
class ReceivedFile:
    """Bytes safely on disk in a temporary file, described, not yet an asset."""

    temporary_path: Path
    media_type: MediaType
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None


# -- reading bytes in -----------------------------------------------------------------------------


def _check_declared_mime(declared: str, field: list[str]) -> None:
    if declared not in GENERIC_MIME_TYPES and declared not in ACCEPTED_TYPES:
        accepted = ", ".join(ACCEPTED_TYPES)
        raise UserError("UNSUPPORTED_MEDIA_TYPE", f"{declared[:100]!r} is not accepted; use one of {accepted}.", field)


def _identify(head: bytes, declared: str, field: list[str]) -> MediaType:
    sniffed = sniff_mime(head)
    if sniffed is None:
        raise UserError("UNSUPPORTED_MEDIA_TYPE", "The content is not in any accepted format.", field)
    if declared not in GENERIC_MIME_TYPES and declared != sniffed:
        raise UserError("MIME_TYPE_MISMATCH", f"The content is {sniffed}, but it was declared as {declared}.", field)
    return ACCEPTED_TYPES[sniffed]


def _too_large(cap: int, field: list[str]) -> UserError:
    return UserError("MEDIA_TOO_LARGE", f"The file is larger than the {cap:,} bytes allowed for its kind.", field)


async def receive_file(
    chunks: AsyncIterator[bytes], declared_mime: str, directory: Path, limits: MediaLimits, field: list[str]
) -> ReceivedFile:
    """Stream ``chunks`` into a new temporary file in ``directory``, checking as it goes.

    The type is known once the first ``SNIFF_BYTES`` arrive; from then on the kind's cap applies
    to every chunk, so an oversize body is cut off at the cap, not read to its end. On any error
    the temporary file is removed.
    """
    declared = normalize_mime(declared_mime)
    _check_declared_mime(declared, field)
    await anyio.to_thread.run_sync(make_private_directories, directory)
    temporary = directory / f".incoming-{secrets.token_hex(12)}"
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    media_type: MediaType | None = None
    cap = limits.cap_for_declared(declared)
    try:
        async with await anyio.open_file(temporary, "xb", opener=private_opener) as out:
            async for chunk in chunks:
                size += len(chunk)
                if len(head) < HEADER_BYTES:
                    head += chunk[: HEADER_BYTES - len(head)]
                if media_type is None and len(head) >= SNIFF_BYTES:
                    media_type = _identify(bytes(head), declared, field)
                    cap = limits.cap(media_type.kind)
                if size > cap:
                    raise _too_large(cap, field)
                digest.update(chunk)
                await out.write(chunk)
        if size == 0:
            raise UserError("EMPTY_FILE", "The file is empty.", field)
        if media_type is None:  # a file shorter than SNIFF_BYTES
            media_type = _identify(bytes(head), declared, field)
        dimensions = image_dimensions(media_type.mime, bytes(head))
    except BaseException:
        # Plain, synchronous unlinks in every cleanup path: after a timeout or a cancelled
        # request, an await here would itself be cancelled and leave the file behind.
        temporary.unlink(missing_ok=True)
        raise
    return ReceivedFile(
        temporary_path=temporary,
        media_type=media_type,
        size_bytes=size,
        sha256=digest.hexdigest(),
        width=dimensions[0] if dimensions else None,
        height=dimensions[1] if dimensions else None,
    )


class ByteSource(Protocol):
    """Anything with ``async read(size)``, such as Starlette's ``UploadFile``."""

    async def read(self, size: int) -> bytes: ...


async def _read_chunks(source: ByteSource) -> AsyncIterator[bytes]:
    while chunk := await source.read(CHUNK_SIZE):
        yield chunk


# -- names and paths ------------------------------------------------------------------------------


def clean_filename(raw: str | None, media_type: MediaType) -> str:
    """A display name safe in a URL path and a header: ASCII letters, digits, ``._-``.

    The extension is made to match the content, because some platforms that pull media judge
    the type by the URL's extension.
    """
    base = PurePosixPath((raw or "").replace("\\", "/")).name
    base = UNSAFE_FILENAME_CHARACTERS.sub("-", base).strip(".-")
    stem, dot, extension = base.rpartition(".")
    if not dot or f".{extension.lower()}" not in media_type.extensions:
        stem, extension = base, media_type.extensions[0].lstrip(".")
    stem = stem[:MAX_FILENAME_STEM].strip(".-") or "media"
    return f"{stem}.{extension.lower()}"


def _filename_from_url(url: str) -> str:
    return unquote(PurePosixPath(httpx.URL(url).path).name)


def storage_path_of(organization_id: str, media_id: str) -> str:
    """Where an asset's file lives, relative to the data directory (the row stores this)."""
    return f"{MEDIA_DIRECTORY}/{organization_id}/{media_id}"


def file_path(settings: Settings, asset: MediaAsset) -> Path:
    return settings.resolved_data_dir / asset.storage_path


def public_url(settings: Settings, secret_key: bytes, asset: Any) -> str:
    """The URL platforms pull the file from; the token in it is the capability to read it.

    ``asset`` is a MediaAsset or a Core row of its columns (the engine reads those).
    """
    return f"{settings.base_url}/media/{asset.id}/{access_token(secret_key, asset.id)}/{quote(asset.filename)}"


# -- creating -------------------------------------------------------------------------------------


def _check_alt_text(alt_text: str) -> None:
    if len(alt_text) > MAX_ALT_TEXT_LENGTH:
        raise UserError(
            "ALT_TEXT_TOO_LONG", f"Alt text is limited to {MAX_ALT_TEXT_LENGTH} characters.", ["input", "altText"]
        )


async def _store(
    database: Database,
    settings: Settings,
    organization_id: str,
    received: ReceivedFile,
    *,
    secret_key: bytes,
    filename: str | None,
    alt_text: str,
    source_url: str | None,
    operation: str,
    idempotency_key: str | None,
) -> MediaAsset:
    """Write the row and move the file into place in one transaction; undo the move on failure.

    Under an idempotency key a replay (or a concurrent duplicate, which waits for the first)
    gets the first call's asset, and the file it received itself is dropped.
    """
    media_id = new_id("med")
    asset = MediaAsset(
        id=media_id,
        organization_id=organization_id,
        kind=received.media_type.kind.value,
        mime_type=received.media_type.mime,
        filename=clean_filename(filename, received.media_type),
        size_bytes=received.size_bytes,
        sha256=received.sha256,
        width=received.width,
        height=received.height,
        alt_text=alt_text,
        storage_path=storage_path_of(organization_id, media_id),
        source_url=source_url,
        access_token_hash=token_hash(access_token(secret_key, media_id)),
    )
    final = file_path(settings, asset)
    moved = False

    async def insert(session: AsyncSession) -> dict[str, Any]:
        nonlocal moved
        session.add(asset)
        await session.flush()
        # Same directory, so the rename is atomic: the file appears whole or not at all.
        await anyio.Path(received.temporary_path).replace(final)
        moved = True
        return {"id": media_id}

    # What makes two requests "the same": the content and how it is described, not the bytes' path.
    request = {"sha256": received.sha256, "filename": asset.filename, "alt_text": alt_text, "source_url": source_url}
    try:
        result = await run_idempotent(database, organization_id, operation, idempotency_key, request, insert)
    except BaseException:
        if moved:
            final.unlink(missing_ok=True)
        raise
    finally:
        received.temporary_path.unlink(missing_ok=True)
    if result["id"] == media_id:
        return asset
    async with database.read() as session:
        replayed = await find_media(session, organization_id, result["id"])
    if replayed is None:
        raise UserError("NOT_FOUND", "The asset created under this idempotency key was deleted since.", ["input", "idempotencyKey"])
    return replayed


def restrict_media_root(settings: Settings) -> None:
    """Close the media directory an earlier version created 0755: whatever files it holds, no
    other local user can reach them through it."""
    restrict(settings.resolved_data_dir / MEDIA_DIRECTORY, DIRECTORY_MODE)


def _organization_directory(settings: Settings, organization_id: str) -> Path:
    return settings.resolved_data_dir / MEDIA_DIRECTORY / organization_id


async def upload_media(
    database: Database,
    settings: Settings,
    organization_id: str,
    *,
    secret_key: bytes,
    source: ByteSource,
    filename: str | None,
    mime_type: str | None,
    alt_text: str = "",
    idempotency_key: str | None = None,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> MediaAsset:
    """Store an uploaded file (anything with ``async read(size)``) as a new asset of the org.

    With ``idempotency_key``, repeating the call (same file, same description) within 24 hours
    returns the first asset instead of making another.
    """
    field = ["input", "file"]
    if not callable(getattr(source, "read", None)):  # e.g. a string sent as JSON instead of a file part
        raise UserError("FILE_REQUIRED", "Send the file as a part of a multipart request.", field)
    _check_alt_text(alt_text)
    received = await receive_file(
        _read_chunks(source),
        mime_type or "",
        _organization_directory(settings, organization_id),
        limits,
        field,
    )
    return await _store(
        database,
        settings,
        organization_id,
        received,
        secret_key=secret_key,
        filename=filename,
        alt_text=alt_text,
        source_url=None,
        operation="uploadMedia",
        idempotency_key=idempotency_key,
    )


def _check_content_length(response: httpx.Response, declared: str, limits: MediaLimits, field: list[str]) -> None:
    """Refuse before reading when the server announces a body over the cap."""
    announced = response.headers.get("content-length", "")
    cap = limits.cap_for_declared(declared)
    if announced.isdigit() and int(announced) > cap:
        raise _too_large(cap, field)


async def _download(
    http: httpx.AsyncClient, url: str, directory: Path, limits: MediaLimits, *, allow_private: bool
) -> ReceivedFile:
    field = ["input", "url"]
    with anyio.fail_after(FETCH_DEADLINE_SECONDS):
        async with fetch(http, url, allow_private=allow_private) as response:
            if response.status_code != 200:
                raise UserError("URL_FETCH_FAILED", f"The URL answered HTTP {response.status_code}.", field)
            declared = normalize_mime(response.headers.get("content-type"))
            _check_declared_mime(declared, field)
            _check_content_length(response, declared, limits, field)
            return await receive_file(response.aiter_bytes(CHUNK_SIZE), declared, directory, limits, field)


async def register_media(
    database: Database,
    settings: Settings,
    organization_id: str,
    *,
    secret_key: bytes,
    url: str,
    alt_text: str = "",
    idempotency_key: str | None = None,
    limits: MediaLimits = DEFAULT_LIMITS,
    client: httpx.AsyncClient | None = None,
) -> MediaAsset:
    """Fetch ``url`` through the SSRF guard and store what it returns as a new asset.

    ``client`` must come from ``url_guard.guarded_client`` (tests pass one with a scripted
    resolver); by default one is made for this call. ``idempotency_key``: as in ``upload_media``.
    Every way the fetch can fail is a user error on ``input.url``: the caller chose the URL.
    """
    field = ["input", "url"]
    _check_alt_text(alt_text)
    allow_private = settings.allow_private_urls
    directory = _organization_directory(settings, organization_id)
    http = client or guarded_client(allow_private=allow_private)
    try:
        validate_url(url, allow_private=allow_private)
        received = await _download(http, url, directory, limits, allow_private=allow_private)
    except UnsafeURL as error:
        raise UserError(error.code, error.message, field) from None
    except TimeoutError:
        raise UserError("URL_FETCH_TIMEOUT", "The URL took too long to answer.", field) from None
    except httpx.HTTPError:
        raise UserError("URL_UNREACHABLE", "The URL could not be fetched.", field) from None
    finally:
        if client is None:
            await http.aclose()
    return await _store(
        database,
        settings,
        organization_id,
        received,
        secret_key=secret_key,
        filename=_filename_from_url(url),
        alt_text=alt_text,
        source_url=url,
        operation="registerMedia",
        idempotency_key=idempotency_key,
    )


# -- reading and deleting -------------------------------------------------------------------------


def _scoped(organization_id: str) -> Select[Any]:
    return select(MediaAsset).where(MediaAsset.organization_id == organization_id, MediaAsset.deleted_at.is_(None))


async def find_media(session: AsyncSession, organization_id: str, media_id: str) -> MediaAsset | None:
    """The org's live asset with this id, or None (unknown, another org's, deleted, not a med_ id)."""
    return await find_owned(session, MediaAsset, "med", organization_id, media_id)


async def list_media(session: AsyncSession, organization_id: str, page: PageRequest) -> Page[MediaAsset]:
    """The org's live assets, newest first, one page at a time."""
    return await paginate(session, _scoped(organization_id), MediaAsset, page)


# A post whose targets are in these states will still publish (or may, once scheduled) the media
# it holds. Failed, unconfirmed and canceled targets publish again only through retryPost or
# schedulePost, which validate the post afresh and name media deleted since.
USING_STATUSES = ("draft", *PENDING_STATUSES, "publishing", "processing")
MAX_POSTS_NAMED = 10


async def posts_using(session: AsyncSession, organization_id: str, media_id: str) -> list[str]:
    """Ids of the org's live posts that attach ``media_id`` and are still to be published.

    Posts keep their media ids in their JSON content; a text match finds the candidates on
    SQLite and PostgreSQL alike, and each is confirmed on the parsed list.
    """
    waiting = exists().where(Target.post_id == Post.id, Target.status.in_(USING_STATUSES))
    query = (
        select(Post.id, Post.content)
        .where(Post.organization_id == organization_id, Post.deleted_at.is_(None), waiting)
        .where(cast(Post.content, Text).contains(media_id, autoescape=True))
        .order_by(Post.created_at, Post.id)
    )
    return [post_id for post_id, content in await session.execute(query) if media_id in (content or {}).get("media_ids", ())]


async def delete_media(database: Database, settings: Settings, organization_id: str, media_id: str) -> MediaAsset:
    """Soft-delete the row, then remove the file once the deletion is committed.

    Media a post still to be published uses is refused (``MEDIA_IN_USE``, naming the posts):
    deleting it would make the post go out without it. The row is locked first (PostgreSQL), so a
    post attaching it at the same moment either commits first and is seen, or sees it deleted.

    The file goes after the commit: a failed commit must not leave a live row without its file.
    A crash between the two leaves an orphan file no URL serves (the row is deleted).
    """
    field = ["input", "id"]
    if not is_id_of(media_id, "med"):
        raise UserError("INVALID_ID", "Expected the id of a media asset (med_…).", field)
    async with database.write() as session:
        asset = await find_media(session, organization_id, media_id)
        if asset is not None and not database.is_sqlite:
            locked = _scoped(organization_id).where(MediaAsset.id == media_id).with_for_update()
            asset = (await session.execute(locked.execution_options(populate_existing=True))).scalar_one_or_none()
        if asset is None:
            raise UserError("NOT_FOUND", "No media asset with this id in this organization.", field)
        if using := await posts_using(session, organization_id, media_id):
            named = ", ".join(using[:MAX_POSTS_NAMED]) + (f" and {len(using) - MAX_POSTS_NAMED} more" if len(using) > MAX_POSTS_NAMED else "")
            raise UserError(
                "MEDIA_IN_USE", f"Posts not yet published use this media: {named}. Delete those posts or remove the media from them first.", field
            )
        asset.deleted_at = utcnow()
    await anyio.Path(file_path(settings, asset)).unlink(missing_ok=True)
    return asset


@dataclass(frozen=True)
class Download:
    asset: MediaAsset
    path: Path


async def open_download(database: Database, settings: Settings, media_id: str, token: str) -> Download | None:
    """The asset and its file for a public media URL, or None when any part of it is wrong.

    Not scoped by org: the URL's token is the credential. Its hash is compared with the stored
    one in constant time, and against a dummy when the id has no row, so timing does not tell
    which part was wrong.
    """
    asset = None
    if is_id_of(media_id, "med"):
        async with database.read() as session:
            query = select(MediaAsset).where(MediaAsset.id == media_id, MediaAsset.deleted_at.is_(None))
            asset = (await session.execute(query)).scalar_one_or_none()
    expected = asset.access_token_hash if asset else _NO_TOKEN_HASH
    if not hmac.compare_digest(expected, token_hash(token)) or asset is None:
        return None
    path = file_path(settings, asset)
    if not await anyio.Path(path).is_file():
        return None
    return Download(asset=asset, path=path)
