"""``GET /dashboard``: a live page of recent jobs and their targets, fed by ``orgEvents``; and
``/dashboard/analytics``: top posts, a post's and an account's series, the best-times heatmap.

The page is plain HTML, CSS and JavaScript shipped in ``gateway/static`` (no build step). It
holds no secret of ours: the visitor types an API key, which the browser keeps in
sessionStorage and sends to ``/graphql`` like any other client. One route serves the page and
its two assets from a fixed list, so nothing else under ``static`` (or the file system) can be
asked for by name.

The content security policy lets the page run only its own script and talk only to its own
origin (HTTP and WebSocket), so even a post text that slipped past the page's escaping could
not load or run anything.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

STATIC = Path(__file__).resolve().parent / "static"

# path after /dashboard → (file in static/, media type)
ASSETS: dict[str, tuple[str, str]] = {
    "": ("dashboard.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/calendar.js": ("calendar.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    # The analytics page (gateway.metrics) and the chart library it draws with (uPlot, MIT).
    "/analytics": ("analytics.html", "text/html; charset=utf-8"),
    "/analytics.js": ("analytics.js", "text/javascript; charset=utf-8"),
    "/analytics.css": ("analytics.css", "text/css; charset=utf-8"),
    "/vendor/uplot.min.js": ("vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/vendor/uplot.min.css": ("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    "/vendor/uplot.LICENSE": ("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
}

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # The page changes with the package; a browser must not keep an old copy past a restart.
    "cache-control": "no-cache",
}


async def dashboard(request: Request) -> Response:
    """The page at ``/dashboard`` and its assets at ``/dashboard/<name>``; anything else is 404."""
    rest = request.path_params.get("rest", "")
    if rest == "/":  # the assets are linked relative to /dashboard, so keep one canonical URL
        return RedirectResponse(request.url.replace(path=request.url.path.rstrip("/")), status_code=308)
    asset = ASSETS.get(rest)
    if asset is None:
        return PlainTextResponse("Not Found", status_code=404)
    filename, media_type = asset
    return Response((STATIC / filename).read_bytes(), media_type=media_type, headers=SECURITY_HEADERS)
