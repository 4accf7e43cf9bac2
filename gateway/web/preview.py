"""``/preview/{token}``: the page a client opens from a preview link (``gateway.approvals.previews``).

Server-rendered HTML with no script at all: each target is shown as its platform will show it,
and a post waiting at the link's stage gets a form with Approve and Reject. The form posts back to
the same URL, so the token is the only credential, and the page can do nothing else: the token
names its posts and its stage, and ``decide`` refuses any other post. Every string from a post or
an account goes through ``html.escape``; the content security policy lets the page load only its
own stylesheet and the media it shows, and submit forms only to itself.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.approvals.previews import (
    PostPreview,
    PreviewGrant,
    PreviewRefused,
    TargetPreview,
    check_standing,
    decide,
    open_link,
    preview_posts,
)
from gateway.core import Forbidden, UserError
from gateway.runtime import Runtime
from gateway.web.dashboard import STATIC

MAX_FORM_BYTES = 16_384
HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # the token is in the URL: never hand it to a page the media links to
    "cache-control": "no-store",
    "x-robots-tag": "noindex",
}
REFUSAL_STATUS = {"EXPIRED": 410, "REVOKED": 410, "INVALID": 404}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="/preview/assets/preview.css"></head>'
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _refused(code: str, message: str, status: int) -> HTMLResponse:
    return _page("Preview", f'<h1>Preview</h1><p class="refused" data-code="{escape(code)}">{escape(message)}</p>', status)


def _media(target: TargetPreview) -> str:
    items = []
    for m in target.media:
        if m.kind in ("image", "gif"):
            items.append(f'<img src="{escape(m.url)}" alt="{escape(m.alt_text)}">')
        else:
            items.append(f'<span class="file">{escape(m.kind)}: {escape(m.filename)}</span>')
    return f'<div class="media">{"".join(items)}</div>' if items else ""


def _target(target: TargetPreview) -> str:
    counted = (
        f'<p class="count">{target.text_length} / {target.text_limit} {escape(target.text_unit or "")}</p>'
        if target.text_length is not None and target.text_limit is not None else ""
    )
    thread = "".join(f'<p class="text thread">{escape(part)}</p>' for part in target.thread)
    who = escape(target.display_name or target.handle)
    return (
        f'<article class="target {escape(target.provider)}" data-provider="{escape(target.provider)}">'
        f'<header><strong>{who}</strong> <span class="handle">@{escape(target.handle)}</span>'
        f' <span class="platform">{escape(target.provider_name)}</span></header>'
        f'<p class="text">{escape(target.text)}</p>{thread}{_media(target)}{counted}</article>'
    )


def _post(post: PostPreview) -> str:
    stage = f" ({escape(post.approval_stage)})" if post.approval_stage else ""
    form = ""
    if post.can_decide:
        form = (
            f'<form method="post"><input type="hidden" name="post_id" value="{escape(post.post_id)}">'
            '<label>Comment <textarea name="comment" maxlength="5000"></textarea></label>'
            '<button name="action" value="approve">Approve</button> <button name="action" value="reject">Reject</button></form>'
        )
    return (
        f'<section class="post" id="{escape(post.post_id)}" data-post-id="{escape(post.post_id)}">'
        f'<p class="approval" data-status="{escape(post.approval_status)}">Approval: {escape(post.approval_status)}{stage}</p>'
        f'{"".join(_target(t) for t in post.targets)}{form}</section>'
    )


async def preview_page(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        grant = open_link(runtime.secret_key, request.path_params["token"])
        async with runtime.database.read() as session:
            await check_standing(session, grant, kill_switch=runtime.settings.kill_switch)
    except PreviewRefused as refused:
        return _refused(refused.code, refused.message, REFUSAL_STATUS[refused.code])
    if request.method == "POST":
        return await _decide(request, runtime, grant)
    posts = await preview_posts(runtime, grant)
    notice = request.query_params.get("done")
    banner = f'<p class="notice">Thank you: {escape(notice)}.</p>' if notice in ("approved", "rejected") else ""
    body = f"<h1>Posts to review</h1>{banner}{''.join(_post(p) for p in posts)}"
    return _page("Posts to review", body)


async def _decide(request: Request, runtime: Runtime, grant: PreviewGrant) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return _refused("TOO_LARGE", "That form is too large.", 413)
    form = await request.form()
    post_id, action, comment = (str(form.get(name) or "") for name in ("post_id", "action", "comment"))
    try:
        async with runtime.database.write() as session:
            decision = await decide(session, grant, post_id, action, comment)
    except Forbidden as refused:
        return _refused("FORBIDDEN", refused.message, 403)
    except UserError as error:
        return _refused(error.code, error.message, 400)
    for event in decision.events:
        await runtime.publish(event, subject_id=decision.post.id)
    runtime.wake_scheduler()
    done = "approved" if action == "approve" else "rejected"
    return RedirectResponse(f"{request.url.path}?done={done}#{post_id}", status_code=303)


async def preview_stylesheet(request: Request) -> Response:
    return Response((STATIC / "preview.css").read_bytes(), media_type="text/css; charset=utf-8", headers={"cache-control": "no-cache"})

