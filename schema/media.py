"""Media assets: upload (GraphQL multipart request spec), register by URL, list, delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload

import gateway.content as service
from gateway.auth import find_owned_many
from gateway.content import MediaKind
from gateway.runtime import Runtime
from gateway.storage import MediaAsset as MediaAssetRow
from schema.context import Info
from schema.payloads import UserErrorType, collect_user_errors
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one

MediaKindType = strawberry.enum(MediaKind, name="MediaKind", description="What a media asset is.")


@strawberry.type(name="MediaAsset", description="A file posts can attach; platforms pull it from `url`.")
class MediaAssetType(Node):
    id: strawberry.ID
    kind: MediaKindType  # type: ignore[valid-type]
    mime_type: str = strawberry.field(description="Sniffed from the content, e.g. `image/png`.")
    filename: str
    size_bytes: int
    sha256: str = strawberry.field(description="Hex SHA-256 of the content; also the file's ETag.")
    width: int | None = strawberry.field(description="Pixels, for images whose header gives it.")
    height: int | None = strawberry.field(description="Pixels, for images whose header gives it.")
    duration_ms: int | None = strawberry.field(description="Length of a video, when known.")
    alt_text: str
    url: str = strawberry.field(description="Public, unguessable URL of the file, for platforms that pull media.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: MediaAssetRow, runtime: Runtime) -> MediaAssetType:
        return cls(
            id=strawberry.ID(row.id),
            kind=MediaKind(row.kind),
            mime_type=row.mime_type,
            filename=row.filename,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            width=row.width,
            height=row.height,
            duration_ms=row.duration_ms,
            alt_text=row.alt_text,
            url=service.public_url(runtime.settings, runtime.secret_key, row),
            created_at=row.created_at,
        )


@nodes_resolver("med")
async def load_media_assets(info: Info, ids: list[str]) -> dict[str, MediaAssetType]:
    organization_id = info.context.require("media:read").organization_id
    runtime = info.context.runtime
    return await read_many(
        info,
        lambda session: find_owned_many(session, MediaAssetRow, "med", organization_id, ids),
        lambda row: MediaAssetType.from_row(row, runtime),
    )


async def load_media_asset(info: Info, id: str) -> MediaAssetType | None:
    principal = info.context.require("media:read")
    runtime = info.context.runtime
    return await read_one(
        info, lambda session: service.find_media(session, principal.organization_id, id), lambda row: MediaAssetType.from_row(row, runtime)
    )


@strawberry.input
class UploadMediaInput:
    file: Upload = strawberry.field(description="The file, as a part of a multipart request.")
    alt_text: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class RegisterMediaInput:
    url: str = strawberry.field(description="A public http(s) URL the gateway fetches the file from.")
    alt_text: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class DeleteMediaInput:
    id: strawberry.ID


@strawberry.type
class MediaAssetPayload:
    media_asset: MediaAssetType | None
    user_errors: list[UserErrorType]

    @classmethod
    def of(cls, info: Info, row: MediaAssetRow | None, errors: list[UserErrorType]) -> MediaAssetPayload:
        asset = MediaAssetType.from_row(row, info.context.runtime) if row else None
        return cls(media_asset=asset, user_errors=errors)


@strawberry.type
class MediaQuery:
    @strawberry.field(description="A media asset of the caller's organization, or null.")
    async def media_asset(self, info: Info, id: strawberry.ID) -> MediaAssetType | None:
        # Like post(id) and node(id): an id that names nothing here, malformed or not, is null.
        return await load_media_asset(info, str(id))

    @strawberry.field(description="The organization's media assets, newest first.")
    async def media(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> Connection[MediaAssetType] | None:
        principal = info.context.require("media:read")
        async with info.context.read() as session:
            page = await service.list_media(session, principal.organization_id, page_request(first, after, last, before))
        runtime = info.context.runtime
        return Connection.from_page(page, lambda row: MediaAssetType.from_row(row, runtime))


async def _write(info: Info, work: Callable[[Runtime, str], Awaitable[MediaAssetRow]]) -> MediaAssetPayload:
    """Check media:write, run the service call for the caller's org, map user errors."""
    principal = info.context.require("media:write")
    row, errors = await collect_user_errors(work(info.context.runtime, principal.organization_id))
    return MediaAssetPayload.of(info, row, errors)


@strawberry.type
class MediaMutation:
    @strawberry.mutation(description="Upload a file (GraphQL multipart request spec) as a media asset.")
    async def upload_media(self, info: Info, input: UploadMediaInput) -> MediaAssetPayload:
        return await _write(
            info,
            lambda runtime, organization_id: service.upload_media(
                runtime.database,
                runtime.settings,
                organization_id,
                secret_key=runtime.secret_key,
                source=input.file,
                filename=getattr(input.file, "filename", None),
                mime_type=getattr(input.file, "content_type", None),
                alt_text=input.alt_text or "",
                idempotency_key=input.idempotency_key,
            ),
        )

    @strawberry.mutation(description="Fetch a file from a public URL and store it as a media asset.")
    async def register_media(self, info: Info, input: RegisterMediaInput) -> MediaAssetPayload:
        return await _write(
            info,
            lambda runtime, organization_id: service.register_media(
                runtime.database,
                runtime.settings,
                organization_id,
                secret_key=runtime.secret_key,
                url=input.url,
                alt_text=input.alt_text or "",
                idempotency_key=input.idempotency_key,
            ),
        )

    @strawberry.mutation(description="Delete a media asset: its URL stops working and its file is removed.")
    async def delete_media(self, info: Info, input: DeleteMediaInput) -> MediaAssetPayload:
        return await _write(
            info,
            lambda runtime, organization_id: service.delete_media(
                runtime.database, runtime.settings, organization_id, str(input.id)
            ),
        )
