"""X processing a video holds no call: the target waits in ``processing``, never ``unconfirmed``.

X processes a video for as long as it likes; the engine gives a call 0.8 × the lease. Sleeping
through X's processing inside the call used to run into that deadline. Now the call ends as soon
as X has the upload: the target is ``processing``, its checks (STATUS) come later under leases of
their own, the upload is never sent twice, and ``POST /2/tweets`` waits until X is done.
"""

from datetime import timedelta

import httpx
from sqlalchemy import select

from gateway.accounts.accounts import save_account
from gateway.storage.models import Attempt, Target
from providers import AccountProfile
from tests import media_samples as samples
from tests.engine import engine_app, new_post, publish, scheduler_for, setup_org
from tests.test_media import upload

X_USER = {"access_token": "xat-123", "user_id": "2244994945", "username": "XDevelopers"}
PROCESSING = {"state": "in_progress", "check_after_secs": 1, "progress_percent": 10}


class StillProcessing:
    """X's media endpoints, with a video X never finishes processing; every request is kept."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        path = request.url.path
        if path == "/2/media/upload/initialize":
            return httpx.Response(200, json={"data": {"id": "77", "media_key": "7_77", "expires_after_secs": 86400}})
        if path.endswith("/append"):
            return httpx.Response(200, json={"data": {"expires_at": 1_900_000_000}})
        if path.endswith("/finalize") or (path == "/2/media/upload" and request.url.params.get("command") == "STATUS"):
            return httpx.Response(200, json={"data": {"id": "77", "media_key": "7_77", "processing_info": PROCESSING}})
        return httpx.Response(500, json={"title": "unexpected in this test", "detail": f"{request.method} {path}"})

    def paths(self) -> set[str]:
        return {f"{r.method} {r.url.path}" for r in self.sent}


async def test_a_video_x_keeps_processing_waits_in_processing_never_uploaded_twice_never_unconfirmed(tmp_path):
    # Calls get 0.8 s; X asks to check back after 1 s, again and again.
    async with engine_app(tmp_path, lease_seconds=1, publish_max_attempts=2) as api:
        org = await setup_org(api)
        x = StillProcessing()
        await api.runtime.http.aclose()
        api.runtime.http = httpx.AsyncClient(transport=httpx.MockTransport(x))
        async with api.runtime.database.write() as session:
            account = await save_account(session, api.runtime.secret_key, org.organization_id, "x", AccountProfile("2244994945", "XDevelopers"), X_USER)
            account_id = account.account.id
        video = await upload(api, org.secret, samples.mp4(), filename="clip.mp4", content_type="video/mp4")
        assert video["userErrors"] == [], video
        post_id = await new_post(api, org.secret, [account_id], text="watch", mediaIds=[video["mediaAsset"]["id"]])
        assert (await publish(api, org.secret, post_id))["userErrors"] == []
        scheduler = scheduler_for(api)

        for checks in range(3):  # the upload, then two checks that find X still at work
            await scheduler.drain(horizon=0.5)
            async with api.runtime.database.write() as session:
                target = (await session.execute(select(Target))).scalar_one()
                assert (target.status, target.processing_stage, target.lease_owner) == ("processing", "transcoding", None)
                assert target.next_attempt_at - target.updated_at == timedelta(seconds=1)  # X's check_after_secs
                target.next_attempt_at = target.updated_at  # the second passes
        async with api.runtime.database.read() as session:
            outcomes = list((await session.execute(select(Attempt.outcome).order_by(Attempt.number))).scalars())
        assert outcomes == ["processing"] * 3
        assert target.attempt_count == 1 and target.error_code is None
        assert sum(r.url.path.endswith("/finalize") for r in x.sent) == 1  # uploaded once
        assert sum(r.url.params.get("command") == "STATUS" for r in x.sent) == 2
        assert "POST /2/tweets" not in x.paths()  # never posted...
        assert not any(path.startswith("GET /2/users/") for path in x.paths())  # ...so never reconciled
