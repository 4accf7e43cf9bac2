"""providers.link_preview: a page's card, read within bounds, and None whenever it cannot be had."""

import httpx

from providers import ProviderContext
from providers.link_preview import MAX_PAGE_BYTES, fetch_image, fetch_preview


def context(handler) -> ProviderContext:
    return ProviderContext(http=httpx.AsyncClient(transport=httpx.MockTransport(handler)), provider_id="test")


async def test_redirects_are_followed_and_the_title_falls_back_to_the_title_element():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/short":
            return httpx.Response(301, headers={"Location": "/articles/1"})
        page = "<html><head><title>\n  Ünïcode   title </title><meta name=description content='Plain description'></head></html>"
        return httpx.Response(200, headers={"Content-Type": "text/html; charset=iso-8859-1"}, content=page.encode("iso-8859-1"))

    preview = await fetch_preview(context(handler), "https://example.com/short")
    assert seen == ["https://example.com/short", "https://example.com/articles/1"]
    assert (preview.url, preview.title, preview.description, preview.image_url) == (
        "https://example.com/articles/1", "Ünïcode title", "Plain description", None,
    )


async def test_no_preview_without_html_a_title_or_an_answer_and_never_a_redirect_loop():
    def answering(response: httpx.Response):
        return lambda request: response

    for handler in (
        answering(httpx.Response(200, headers={"Content-Type": "application/json"}, content=b'{"title": "x"}')),
        answering(httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<p>no head</p>")),
        answering(httpx.Response(503)),
        answering(httpx.Response(302, headers={"Location": "/again"})),
    ):
        assert await fetch_preview(context(handler), "https://example.com/") is None

    def refusing(request):
        raise httpx.ConnectError("refused by the address guard")

    assert await fetch_preview(context(refusing), "https://10.0.0.1/") is None


async def test_a_huge_page_is_read_only_up_to_the_cap():
    served = []

    async def stream():
        for _ in range(64):
            chunk = b"<!-- filler -->" * 4096
            served.append(len(chunk))
            yield chunk

    def handler(request):
        head = b"<html><head><meta property='og:title' content='Big page'></head>"
        return httpx.Response(200, headers={"Content-Type": "text/html"}, content=_chain(head, stream()))

    preview = await fetch_preview(context(handler), "https://example.com/big")
    assert preview.title == "Big page"
    assert sum(served) < 2 * MAX_PAGE_BYTES  # stopped reading soon after the cap, not at 3.8 MB


async def _chain(first: bytes, rest):
    yield first
    async for chunk in rest:
        yield chunk


async def test_an_image_of_another_type_or_over_the_size_is_refused():
    def image(content_type: str, size: int):
        return lambda request: httpx.Response(200, headers={"Content-Type": content_type}, content=b"\x01" * size)

    types = frozenset({"image/png"})
    fetched = await fetch_image(context(image("image/png", 100)), "https://e.com/a.png", max_bytes=100, mime_types=types)
    assert fetched.mime_type == "image/png" and len(fetched.data) == 100
    assert await fetch_image(context(image("image/png", 101)), "https://e.com/a.png", max_bytes=100, mime_types=types) is None
    assert await fetch_image(context(image("image/svg+xml", 10)), "https://e.com/a.svg", max_bytes=100, mime_types=types) is None
