"""A stand-in OAuth platform for tests: an authorization server, a tiny publish API, and its provider.

The authorization server speaks the real protocol: the authorization endpoint redirects back with
``code`` and ``state`` (RFC 6749 §4.1.2) or with ``error=access_denied``; the token endpoint takes
a form-encoded POST with client authentication (HTTP Basic or form fields, §2.3.1), answers JSON
(§5.1) with ``Cache-Control: no-store``, refuses with ``invalid_grant`` / ``invalid_client``
(§5.2), checks PKCE S256 (RFC 7636 §4.6), makes codes single-use, and rotates refresh tokens
when told to. ``/app/connected`` stands for the page of the application that started the
connection. ``StandInProvider`` is a plugin written the way a real one is: it talks to the
platform over ``ctx.http`` only.

Everything is served by uvicorn on 127.0.0.1 in the test's own event loop (``serving``), the
platform over https with a test certificate authority (OAuth2Spec URLs must be https).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from providers import (
    AccountProfile,
    AuthExpired,
    Capabilities,
    Limits,
    OAuth2Spec,
    Provider,
    PublishResult,
    RateLimited,
    Rejected,
    TokenSet,
    TransientError,
    hookimpl,
)
from tests.tls import TlsFiles

CLIENT_ID = "standin-client"
CLIENT_SECRET = "standin-client-secret-3f9a"
PROVIDER_ID = "standin"
CLIENT_ENV = {
    "SOCIALGATE_OAUTH_STANDIN_CLIENT_ID": CLIENT_ID,
    "SOCIALGATE_OAUTH_STANDIN_CLIENT_SECRET": CLIENT_SECRET,
}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


@dataclass
class Grant:
    user: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass
class AuthorizationServer:
    """The platform's state; a test reads it and changes how the platform behaves."""

    user: str = "alice"
    deny_consent: bool = False
    rotate_refresh_tokens: bool = True
    issue_refresh_tokens: bool = True
    access_ttl_seconds: int = 3600
    # Status codes the next token requests answer with instead of working (503, 429…).
    token_failures: list[int] = field(default_factory=list)
    # Seconds the token endpoint waits before answering a refresh (to overlap concurrent ones).
    refresh_delay: float = 0.0
    # Set when a refresh request arrives; while ``hold_refreshes`` is given and not yet set, every
    # refresh waits for it, so a test can act while a refresh is in flight without guessing when.
    refresh_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    hold_refreshes: asyncio.Event | None = None
    codes: dict[str, Grant] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    access_tokens: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)

    def grant_types(self) -> list[str]:
        return [request["grant_type"] for request in self.token_requests]

    def issue(self, user: str, *, refresh: bool) -> dict[str, Any]:
        access = "at_" + secrets.token_urlsafe(16)
        self.access_tokens[access] = user
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl_seconds, "scope": "posts.write offline"}
        if refresh:
            refresh_token = "rt_" + secrets.token_urlsafe(16)
            self.refresh_tokens[refresh_token] = user
            body["refresh_token"] = refresh_token
        return body


def _oauth_error(error: str, status: int = 400, description: str = "") -> JSONResponse:
    body = {"error": error} | ({"error_description": description} if description else {})
    headers = {"Cache-Control": "no-store"} | ({"WWW-Authenticate": "Basic"} if status == 401 else {})
    return JSONResponse(body, status_code=status, headers=headers)


def _client_of(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id, client_secret
    return form.get("client_id"), form.get("client_secret")


def authorization_app(server: AuthorizationServer) -> Starlette:
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        server.authorize_requests.append(params)
        if params.get("response_type") != "code" or params.get("client_id") != CLIENT_ID or "redirect_uri" not in params:
            return Response("bad authorization request", status_code=400)
        back = {"state": params["state"]} if "state" in params else {}
        if server.deny_consent:
            return RedirectResponse(params["redirect_uri"] + "?" + urlencode({"error": "access_denied", **back}), status_code=302)
        code = "code_" + secrets.token_urlsafe(12)
        server.codes[code] = Grant(server.user, params["redirect_uri"], params.get("code_challenge"), params.get("code_challenge_method"))
        return RedirectResponse(params["redirect_uri"] + "?" + urlencode({"code": code, **back}), status_code=302)

    async def token(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", description="the body must be form-encoded")
        form = {name: str(value) for name, value in (await request.form()).items()}
        server.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        if server.token_failures:
            status = server.token_failures.pop(0)
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=status, headers={"Retry-After": "7"} if status == 429 else {})
        client_id, client_secret = _client_of(request, form)
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            return _oauth_error("invalid_client", 401)
        if form.get("grant_type") == "authorization_code":
            grant = server.codes.pop(form.get("code", ""), None)
            if grant is None:
                return _oauth_error("invalid_grant", description="unknown or used code")
            server.used_codes.add(form["code"])
            if form.get("redirect_uri") != grant.redirect_uri:
                return _oauth_error("invalid_grant", description="redirect_uri mismatch")
            if grant.code_challenge is not None:
                verifier = form.get("code_verifier")
                if grant.code_challenge_method != "S256" or not verifier or s256(verifier) != grant.code_challenge:
                    return _oauth_error("invalid_grant", description="PKCE verification failed")
            body = server.issue(grant.user, refresh=server.issue_refresh_tokens)
        elif form.get("grant_type") == "refresh_token":
            server.refresh_arrived.set()
            if server.hold_refreshes is not None:
                await server.hold_refreshes.wait()
            await asyncio.sleep(server.refresh_delay)
            old = form.get("refresh_token", "")
            user = server.refresh_tokens.get(old)
            if user is None:
                return _oauth_error("invalid_grant", description="refresh token revoked or unknown")
            body = server.issue(user, refresh=server.rotate_refresh_tokens)
            if server.rotate_refresh_tokens:
                del server.refresh_tokens[old]
        else:
            return _oauth_error("unsupported_grant_type")
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def bearer_user(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return server.access_tokens.get(header[7:]) if header.startswith("Bearer ") else None

    async def me(request: Request) -> Response:
        user = bearer_user(request)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"id": f"uid-{user}", "username": user, "name": user.title()})

    async def create_post(request: Request) -> Response:
        user = bearer_user(request)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        body = await request.json()
        post = {"id": str(len(server.posts) + 1), "user": user, "text": body["text"]}
        server.posts.append(post)
        return JSONResponse({"id": post["id"], "url": f"https://standin.example/{user}/{post['id']}"}, status_code=201)

    async def client_app_page(request: Request) -> Response:
        """The page of the application that started the connection, where the browser lands last."""
        return JSONResponse(dict(request.query_params))

    return Starlette(
        routes=[
            Route("/app/connected", client_app_page, methods=["GET"]),
            Route("/authorize", authorize, methods=["GET"]),
            Route("/token", token, methods=["POST"]),
            Route("/me", me, methods=["GET"]),
            Route("/posts", create_post, methods=["POST"]),
        ]
    )


# -- the provider -----------------------------------------------------------------------------


def _raise_for(response: httpx.Response, *, refreshing: bool) -> None:
    if response.is_success:
        return
    if response.status_code == 429:
        raise RateLimited(float(response.headers.get("retry-after", "1")), http_status=429)
    if response.status_code >= 500:
        raise TransientError(f"the platform answered {response.status_code}", http_status=response.status_code)
    error = str(response.json().get("error", "invalid_request"))
    if refreshing or response.status_code == 401:
        raise AuthExpired(f"the platform refused the token: {error}", code=error.upper(), http_status=response.status_code)
    raise Rejected(error.upper(), f"the platform refused: {error}", http_status=response.status_code)


class StandInProvider(Provider):
    """Subclassed per test by ``standin_provider`` with the stand-in's URLs in its OAuth2Spec."""

    id = PROVIDER_ID
    name = "Stand-in"
    capabilities = Capabilities()
    limits = Limits(max_text_length=280)
    base_url = ""

    async def _tokens(self, ctx: Any, form: dict[str, str], client_id: str, client_secret: str, *, refreshing: bool) -> TokenSet:
        try:
            response = await ctx.http.post(
                self.auth.token_url, data=form, auth=(client_id, client_secret), headers={"Accept": "application/json"}
            )
        except httpx.TransportError as error:
            raise TransientError(f"token endpoint unreachable: {type(error).__name__}") from None
        _raise_for(response, refreshing=refreshing)
        body = response.json()
        return TokenSet(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=ctx.now() + timedelta(seconds=body["expires_in"]) if "expires_in" in body else None,
            scopes=tuple(body.get("scope", "").split()),
        )

    async def exchange_code(self, ctx, *, code, redirect_uri, code_verifier, client_id, client_secret):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        return await self._tokens(ctx, form, client_id, client_secret, refreshing=False)

    async def refresh_token(self, ctx, *, client_id, client_secret):
        form = {"grant_type": "refresh_token", "refresh_token": ctx.credential("refresh_token") or ""}
        return await self._tokens(ctx, form, client_id, client_secret, refreshing=True)

    def _bearer(self, ctx: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {ctx.credential('access_token')}"}

    async def connect(self, ctx, credentials):
        response = await ctx.http.get(self.base_url + "/me", headers=self._bearer(ctx))
        _raise_for(response, refreshing=False)
        me = response.json()
        return AccountProfile(external_id=me["id"], handle=me["username"], display_name=me["name"])

    async def publish(self, ctx, request):
        response = await ctx.http.post(self.base_url + "/posts", json={"text": request.text}, headers=self._bearer(ctx))
        _raise_for(response, refreshing=False)
        body = response.json()
        return PublishResult(platform_post_id=body["id"], url=body["url"], raw=body)


def standin_provider(base_url: str, *, pkce: bool = True) -> StandInProvider:
    spec = OAuth2Spec(authorize_url=base_url + "/authorize", token_url=base_url + "/token", scopes=("posts.write", "offline"), pkce=pkce)
    kind = type("StandIn", (StandInProvider,), {"auth": spec, "base_url": base_url})
    return kind()


def install(runtime: Any, provider: Provider) -> None:
    """Register the provider on a running runtime, as an installed plugin would be."""

    @hookimpl
    def register_providers() -> list[Provider]:
        return [provider]

    runtime.plugins.add("standin-test-plugin", SimpleNamespace(register_providers=register_providers))


# -- serving on loopback ----------------------------------------------------------------------


def loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(app: Any, sock: socket.socket | None = None, tls: TlsFiles | None = None, **options: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 inside the running event loop; yields its base URL.

    ``options`` go to ``uvicorn.Config`` (e.g. ``ws=`` the WebSocket protocol ``socialgate serve`` runs).
    """
    sock = sock or loopback_socket()
    certificate = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)} if tls else {}
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="auto", **certificate, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
