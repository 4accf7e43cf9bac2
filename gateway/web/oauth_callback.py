"""``GET /oauth/{provider}/callback``: where platforms send the browser back after consent.

It answers with a 303 to the connection's own (checked) redirect URI, or, when the ``state``
names no connection, a plain 400 page: there is no checked URI to send the browser to. The
URL carries an authorization code, so nothing here is cached or passed on as a referrer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from gateway.accounts import complete_connection

PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
UNKNOWN_STATE_PAGE = (
    "This sign-in link is not valid: it is unknown to this gateway or incomplete.\n"
    "Go back to the application and connect the account again.\n"
)


async def oauth_callback(request: Request) -> Response:
    runtime = request.app.state.runtime
    params = {name: request.query_params[name] for name in request.query_params}
    outcome = await complete_connection(runtime, request.path_params["provider"], params)
    if outcome.redirect_to is None:
        return PlainTextResponse(UNKNOWN_STATE_PAGE, status_code=400, headers=PRIVATE_HEADERS)
    return RedirectResponse(outcome.redirect_to, status_code=303, headers=PRIVATE_HEADERS)
