"""WordPress through its REST API (``/wp-json/wp/v2``): a self-hosted site (``wordpress``) and a
WordPress.com site (``wordpress_com``).

Both speak the same ``wp/v2`` routes and differ only in where they are and how they sign in:

| | ``wordpress`` (self-hosted) | ``wordpress_com`` |
|---|---|---|
| routes | ``{site_url}/wp-json/wp/v2/…`` | ``https://public-api.wordpress.com/wp/v2/sites/{blog_id}/…`` |
| auth | ``Authorization: Basic base64(user:application_password)`` (a credentials form; WordPress 5.6+ application passwords, HTTPS unless the site runs with ``WP_ENVIRONMENT_TYPE=local``) | OAuth 2 bearer token; the user picks the site on WordPress.com's consent screen and the token answer names it (``blog_id``) |

A post: ``POST /wp/v2/posts {title, content, status, excerpt, slug, categories, tags,
featured_media}`` → the post (``id``, ``link``). The featured image is uploaded first with
``POST /wp/v2/media`` (the bytes as the body, ``Content-Disposition: attachment``).
Categories and tags are ids of the site's terms: ``setting_choices`` reads them from the site.

Why every post is sent with a slug: a publish whose answer was lost is found again with
``GET /wp/v2/posts?slug=…`` (``reconcile``). When the user sets no slug, one is made from the
title plus a short hash of the target's idempotency key, so it is unique to this target.
Reconcile also compares the title, because WordPress gives a duplicate slug a ``-2`` suffix
and the slug alone could match an older post.

Delete moves the post to the trash (``DELETE /wp/v2/posts/{id}``), which a site owner can undo.

Errors are ``{"code": "rest_…", "message": …, "data": {"status": …}}``: 401 → ``AuthExpired``;
429 → ``RateLimited`` (hosts and security plugins send it; core does not); other 4xx →
``Rejected`` with WordPress's ``code``; 5xx → ``TransientError``. Security plugins and some
hosts strip the ``Authorization`` header, which then reads as ``rest_not_logged_in`` (401).
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from typing import Any

import httpx

from providers import (
    AccountProfile,
    Capabilities,
    CredentialField,
    Issue,
    Limits,
    OAuth2Spec,
    PostDraft,
    Provider,
    ProviderContext,
    PublishMedia,
    PublishRequest,
    PublishResult,
    Rejected,
    SettingChoice,
    SettingField,
    TokenSet,
    Unconfirmed,
    hookimpl,
)
from providers.http import json_object, raise_for_response, send
from providers.oauth import code_form, token_set_from

WPCOM_API = "https://public-api.wordpress.com"
WPCOM_AUTHORIZE_URL = f"{WPCOM_API}/oauth2/authorize"
WPCOM_TOKEN_URL = f"{WPCOM_API}/oauth2/token"

STATUSES = ("publish", "draft", "pending", "private")
TERM_SETTINGS = {"categories": "categories", "tags": "tags"}  # setting → the wp/v2 route of its terms
TERM_IDS = re.compile(r"\d+(,\d+)*")
MAX_TERM_PAGES = 10  # 100 terms a page (the REST API's cap): 1,000 categories or tags are offered at most
TITLE_FROM_TEXT = 100  # characters of the text's first line used as the title when none is set
SLUG_WORDS = 60  # characters of the title kept in a generated slug


def generated_slug(title: str, idempotency_key: str) -> str:
    """A slug for a post the user gave none: the title's ASCII words, then 8 hex of the target's key.

    Already in the form WordPress stores (lower-case ASCII letters, digits and hyphens), so
    ``reconcile`` can look it up as sent; the hash makes it the target's own.
    """
    words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:SLUG_WORDS].rstrip("-")
    suffix = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]
    return f"{words}-{suffix}" if words else f"post-{suffix}"


def post_title(request: PublishRequest) -> str:
    """The ``title`` setting, or the text's first line (shortened) when none is set."""
    title = request.settings.get("title")
    if title:
        return str(title)
    first = request.text.strip().splitlines()[0] if request.text.strip() else ""
    return first[:TITLE_FROM_TEXT]


def _term_ids(value: Any) -> list[int]:
    return [int(part) for part in str(value).split(",") if part] if value else []


def raise_for_wordpress(response: httpx.Response) -> None:
    """Map a WordPress REST error (``{"code", "message", "data": {"status"}}``) to the SDK's errors."""
    if response.is_success:
        return
    body = json_object(response) or {}
    code = body.get("code")
    raise_for_response(response, code=str(code) if code else None, message=body.get("message"))


class _WordPress(Provider):
    """What both WordPress providers share: the wp/v2 calls; subclasses say where and how to sign in."""

    capabilities = Capabilities(delete=True, reconcile=True)
    limits = Limits(max_text_length=None, max_media=1, media_kinds=frozenset({"image"}), max_thread_parts=1)
    settings = (
        SettingField("title", "Title", help="The post's title; the text's first line when empty."),
        SettingField("status", "Status", type="choice", choices=STATUSES, default="publish"),
        SettingField(
            "categories", "Categories", choices_from_account=True,
            help="Comma-separated ids of the site's categories (offered per account).",
        ),
        SettingField("tags", "Tags", choices_from_account=True, help="Comma-separated ids of the site's tags (offered per account)."),
        SettingField("excerpt", "Excerpt", help="The summary themes show in lists and feeds."),
        SettingField("slug", "Slug", help="The post's URL name; made from the title when empty."),
    )
    # -- where the site is and how to sign in: each provider says ---------------------------

    def api_base(self, ctx: ProviderContext, credentials: Any = None) -> str:
        """The ``wp/v2`` root of the account's site, without a trailing slash."""
        raise NotImplementedError

    def auth_header(self, ctx: ProviderContext, credentials: Any = None) -> str:
        raise NotImplementedError

    def site(self, credentials: Any) -> str:
        """The site, as the account's external id starts: the same site and user is the same account."""
        raise NotImplementedError

    async def _call(self, ctx: ProviderContext, method: str, path: str, *, credentials: Any = None, publishes: bool = False,
                    headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        url = self.api_base(ctx, credentials) + path
        all_headers = {"Authorization": self.auth_header(ctx, credentials), "Accept": "application/json", **(headers or {})}
        return await send(ctx, method, url, headers=all_headers, publishes=publishes, **kwargs)

    # -- the operations ---------------------------------------------------------------------

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        return [
            Issue(("settings", name), "SETTING_INVALID", f"{name.capitalize()} must be comma-separated ids such as 3,12 (see the account's choices).")
            for name in TERM_SETTINGS
            if draft.settings.get(name) and not TERM_IDS.fullmatch(str(draft.settings[name]))
        ]

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """``GET /wp/v2/users/me?context=edit``: whose credentials these are, and that they may write."""
        response = await self._call(ctx, "GET", "/users/me", credentials=credentials, params={"context": "edit"})
        raise_for_wordpress(response)
        me = response.json()
        site = self.site(credentials)
        return AccountProfile(
            external_id=f"{site}#{me['id']}", handle=str(me.get("slug") or me.get("username") or me["id"]),
            display_name=str(me.get("name") or ""), account_type="site", avatar_url=(me.get("avatar_urls") or {}).get("96"),
            raw={"id": me["id"], "site": site},
        )

    async def setting_choices(self, ctx: ProviderContext, setting: str) -> list[SettingChoice]:
        """The site's categories or tags (``GET /wp/v2/categories|tags``), 100 a page, as id → name."""
        route = TERM_SETTINGS.get(setting)
        if route is None:
            raise Rejected("UNKNOWN_SETTING", f"{setting} has no choices read from the site")
        choices: list[SettingChoice] = []
        for page in range(1, MAX_TERM_PAGES + 1):
            params = {"per_page": "100", "page": str(page), "orderby": "name", "_fields": "id,name,slug,count"}
            response = await self._call(ctx, "GET", f"/{route}", params=params)
            raise_for_wordpress(response)
            terms = response.json()
            choices += [SettingChoice(str(t["id"]), t.get("name") or t.get("slug") or str(t["id"]), {"slug": t.get("slug"), "count": t.get("count")}) for t in terms]
            if page >= int(response.headers.get("X-WP-TotalPages") or 1):
                break
        return choices

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        title = post_title(request)
        body: dict[str, Any] = {
            "title": title,
            "content": request.text,
            "status": str(request.settings.get("status") or "publish"),
            "slug": str(request.settings.get("slug") or generated_slug(title, request.idempotency_key)),
        }
        if request.settings.get("excerpt"):
            body["excerpt"] = str(request.settings["excerpt"])
        for name in TERM_SETTINGS:
            if ids := _term_ids(request.settings.get(name)):
                body[name] = ids
        if request.media:
            with ctx.preparing():
                body["featured_media"] = await self._upload_featured(ctx, request.media[0])
        response = await self._call(ctx, "POST", "/posts", json=body, publishes=True)
        raise_for_wordpress(response)
        post = json_object(response)
        if not post or "id" not in post:
            raise Unconfirmed(f"WordPress answered {response.status_code} without the post")
        return _result(post)

    async def _upload_featured(self, ctx: ProviderContext, media: PublishMedia) -> int:
        """``POST /wp/v2/media`` with the image as the body; the attachment's id (and its alt text)."""
        # WordPress reads only a plain quoted ``filename`` (it refuses RFC 6266's ``filename*``).
        filename = re.sub(r"[^A-Za-z0-9._-]+", "-", media.filename) or "image." + media.mime_type.split("/")[-1]
        headers = {"Content-Type": media.mime_type, "Content-Disposition": f'attachment; filename="{filename}"'}
        params = {"alt_text": media.alt_text} if media.alt_text else None
        response = await self._call(ctx, "POST", "/media", content=await media.source.read(), headers=headers, params=params)
        raise_for_wordpress(response)
        return int(response.json()["id"])

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        """Move the post to the trash; a post already trashed (410) or gone (404) is done."""
        response = await self._call(ctx, "DELETE", f"/posts/{int(platform_post_id)}")
        if response.status_code in (404, 410):
            return
        raise_for_wordpress(response)

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """The post with this target's slug and title, in any status but the trash; None if absent."""
        title = post_title(request)
        slug = str(request.settings.get("slug") or generated_slug(title, request.idempotency_key))
        params = {"slug": slug, "status": ",".join(STATUSES + ("future",)), "context": "edit"}
        response = await self._call(ctx, "GET", "/posts", params=params)
        raise_for_wordpress(response)
        for post in response.json():
            if (post.get("title") or {}).get("raw") == title:
                return _result(post)
        return None


def _result(post: dict[str, Any]) -> PublishResult:
    return PublishResult(
        platform_post_id=str(post["id"]), url=post.get("link"),
        raw={"id": post["id"], "status": post.get("status"), "slug": post.get("slug"), "link": post.get("link")},
    )


class WordPress(_WordPress):
    id = "wordpress"
    name = "WordPress"
    description = "Posts to a self-hosted WordPress site (5.6+) through its REST API with an application password."
    approval = "None: any user who may publish on the site, with an application password."
    auth = (
        CredentialField(
            "site_url", "Site URL", kind="url", loopback_http=True,
            help="The site's address, e.g. https://blog.example.com (the REST API lives under /wp-json).",
        ),
        CredentialField("username", "Username", help="The WordPress user the posts are written as."),
        CredentialField(
            "application_password", "Application password", secret=True,
            help="Users → Profile → Application Passwords in wp-admin (not the login password).",
        ),
    )

    def api_base(self, ctx: ProviderContext, credentials: Any = None) -> str:
        return f"{self.site(credentials or ctx.credentials)}/wp-json/wp/v2"

    def site(self, credentials: Any) -> str:
        return str(credentials.get("site_url") or "").rstrip("/")

    def auth_header(self, ctx: ProviderContext, credentials: Any = None) -> str:
        values = credentials or ctx.credentials
        # WordPress shows application passwords in groups of four ("abcd efgh …"); the spaces are optional.
        pair = f"{values.get('username', '')}:{str(values.get('application_password', '')).replace(' ', '')}"
        return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class WordPressCom(_WordPress):
    id = "wordpress_com"
    name = "WordPress.com"
    description = "Posts to a WordPress.com site (or a Jetpack-connected one) chosen on WordPress.com's consent screen."
    approval = "None: any application registered at developer.wordpress.com."
    auth = OAuth2Spec(authorize_url=WPCOM_AUTHORIZE_URL, token_url=WPCOM_TOKEN_URL, refreshable=False)

    def api_base(self, ctx: ProviderContext, credentials: Any = None) -> str:
        blog = str((credentials or ctx.credentials).get("blog_id") or "")
        return f"{WPCOM_API}/wp/v2/sites/{urllib.parse.quote(blog)}"

    def site(self, credentials: Any) -> str:
        return f"wordpress.com/{credentials.get('blog_id', '')}"

    def auth_header(self, ctx: ProviderContext, credentials: Any = None) -> str:
        return f"Bearer {(credentials or ctx.credentials).get('access_token', '')}"

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        """Trade the code; WordPress.com's answer names the site (``blog_id``, ``blog_url``), kept as credentials."""
        form = code_form(code=code, redirect_uri=redirect_uri, client_id=client_id, client_secret=client_secret)
        response = await send(ctx, "POST", WPCOM_TOKEN_URL, data=form, headers={"Accept": "application/json"})
        answer = json_object(response) or {}
        if not response.is_success:
            if 400 <= response.status_code < 500 and response.status_code != 429:
                error = str(answer.get("error") or f"HTTP_{response.status_code}").upper()
                raise Rejected(error, str(answer.get("error_description") or error), http_status=response.status_code)
            raise_for_response(response)
        if not answer.get("blog_id"):
            raise Rejected("NO_SITE", "WordPress.com granted a token for no site: connect again and pick a site")
        return token_set_from(answer, ctx, {"blog_id": str(answer["blog_id"]), "blog_url": str(answer.get("blog_url") or "")})


@hookimpl
def register_providers() -> list[Provider]:
    return [WordPress(), WordPressCom()]
