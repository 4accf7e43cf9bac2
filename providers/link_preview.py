"""A linked page's preview (Open Graph title, description and image), read through ``ctx.http``.

Some platforms show a card for a link but leave building it to the poster (Bluesky embeds
``app.bsky.embed.external``; its app fetches the page itself). A preview is an extra: a page that
does not answer, is not HTML, has no title, or is refused by the gateway's address guard leaves
the post without a card, never without the post. So these functions answer None instead of
raising, and read at most a bounded number of bytes, within a short timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

from providers.context import ProviderContext

MAX_PAGE_BYTES = 512 * 1024  # the <head> is near the start; a page is never read whole
MAX_REDIRECTS = 3
TIMEOUT = httpx.Timeout(5.0)
MAX_TITLE = 300
MAX_DESCRIPTION = 1_000


@dataclass(frozen=True)
class LinkPreview:
    url: str  # the page's address after redirects
    title: str
    description: str
    image_url: str | None


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    mime_type: str


class _HeadParser(HTMLParser):
    """The ``<meta>`` properties and the ``<title>`` of a page (first of each wins)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = {name: value or "" for name, value in attrs}
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key and "content" in values:
                self.meta.setdefault(key, values["content"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _tidy(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


async def _get(ctx: ProviderContext, url: str, accept: str, max_bytes: int) -> tuple[str, httpx.Response, bytes] | None:
    """(final URL, response, at most ``max_bytes`` of body) of a 200 after redirects, or None."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        async with ctx.http.stream("GET", current, headers={"Accept": accept}, timeout=TIMEOUT, follow_redirects=False) as response:
            if response.is_redirect and "location" in response.headers:
                current = urljoin(current, response.headers["location"])
                continue
            if response.status_code != 200:
                return None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= max_bytes:
                    break
            return current, response, bytes(body[:max_bytes])
    return None


async def fetch_preview(ctx: ProviderContext, url: str) -> LinkPreview | None:
    """The page's preview, or None when it has no title or cannot be read."""
    try:
        fetched = await _get(ctx, url, "text/html,application/xhtml+xml", MAX_PAGE_BYTES)
    except Exception as error:  # noqa: BLE001 - any failure only means no card (see the module's docstring)
        ctx.log.info("no link preview for %s: %s", url, type(error).__name__)
        return None
    if fetched is None:
        return None
    final_url, response, body = fetched
    if "html" not in response.headers.get("content-type", "").lower():
        return None
    parser = _HeadParser()
    parser.feed(body.decode(response.charset_encoding or "utf-8", errors="replace"))
    meta = parser.meta
    title = _tidy(meta.get("og:title") or meta.get("twitter:title") or parser.title, MAX_TITLE)
    if not title:
        return None
    description = _tidy(meta.get("og:description") or meta.get("twitter:description") or meta.get("description") or "", MAX_DESCRIPTION)
    image = (meta.get("og:image") or meta.get("og:image:url") or meta.get("twitter:image") or "").strip()
    image_url = urljoin(final_url, image) if image else None
    if image_url is not None and not image_url.startswith(("https://", "http://")):
        image_url = None
    return LinkPreview(url=final_url, title=title, description=description, image_url=image_url)


async def fetch_image(ctx: ProviderContext, url: str, *, max_bytes: int, mime_types: frozenset[str]) -> FetchedImage | None:
    """The image at ``url`` when it is one of ``mime_types`` and at most ``max_bytes``, else None."""
    try:
        fetched = await _get(ctx, url, ", ".join(sorted(mime_types)), max_bytes + 1)
    except Exception as error:  # noqa: BLE001 - a card without its image is still a card
        ctx.log.info("no preview image at %s: %s", url, type(error).__name__)
        return None
    if fetched is None:
        return None
    _, response, body = fetched
    mime_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime_type not in mime_types or not body or len(body) > max_bytes:
        return None
    return FetchedImage(data=body, mime_type=mime_type)


__all__ = ["FetchedImage", "LinkPreview", "fetch_image", "fetch_preview"]
