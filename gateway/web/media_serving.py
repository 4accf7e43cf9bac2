"""``GET /media/{id}/{token}/{filename}``: the file of a media asset, for platforms that pull it.

No API key: platforms fetching a video for Instagram or TikTok carry none, so the unguessable
token in the path is the credential. Anything wrong — unknown id, wrong token, deleted asset —
is the same bare 404. The filename is cosmetic (some platforms judge the type by the URL's
extension) and not checked. Ranges and HEAD come from Starlette's FileResponse, which platforms
pulling large videos rely on.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from gateway.content import open_download
from gateway.runtime import Runtime

# User content served from the API's own origin: never sniffed into another type, never run
# as a page (a PDF viewer or an HTML-looking file gets an opaque origin and no scripts).
SAFETY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox; default-src 'none'",
    "cache-control": "public, max-age=86400, immutable",
}


async def serve_media(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    download = await open_download(
        runtime.database, runtime.settings, request.path_params["media_id"], request.path_params["token"]
    )
    if download is None:
        return PlainTextResponse("Not Found", status_code=404)
    asset = download.asset
    etag = f'"{asset.sha256}"'
    headers = {**SAFETY_HEADERS, "etag": etag}
    if _none_match(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(
        download.path,
        media_type=asset.mime_type,
        filename=asset.filename,
        content_disposition_type="inline",
        headers=headers,
    )


def _none_match(header: str, etag: str) -> bool:
    """Whether If-None-Match names this entity (weak comparison, as RFC 9110 asks for GET)."""
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags
