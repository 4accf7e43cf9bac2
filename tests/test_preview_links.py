"""Client preview links (issue 14.5): a signed, expiring /preview/{token} page showing each target
as its platform will, whose Approve / Reject can do only that, for only the link's posts."""

from __future__ import annotations

import base64
import dataclasses
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from gateway.approvals.previews import PreviewGrant, PreviewRefused, open_link, sign
from gateway.auth.keys import mint_key
from gateway.core.clock import utcnow
from gateway.storage.models import ApiKey, Organization
from tests.browser import WAIT_MS, chromium, needs_chromium, page_problems
from tests.conftest import make_org_with_key
from tests.demo_server import graphql, sandbox_account
from tests.servers import serve

SET_POLICY = """mutation($p: ApprovalPolicyInput) { setApprovalPolicy(input: {policy: $p}) { userErrors { code } } }"""
CREATE = """mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } userErrors { code message } } }"""
SUBMIT = """mutation($id: ID!) { submitPostForApproval(input: {postId: $id}) { userErrors { code } } }"""
LINK = """mutation($i: CreatePreviewLinkInput!) { createPreviewLink(input: $i) {
  previewLink { url expiresAt postIds stage } userErrors { field code } } }"""
APPROVAL = """query($id: ID!) { post(id: $id) { approval { status comments { action comment via authorKeyId } } } }"""
CONNECT = """mutation($h: String!) { connectAccount(input: {provider: "sandbox", credentials: {handle: $h}}) { account { id } } }"""


async def _ready(api, org, stages=("REVIEW",)) -> tuple[str, str]:
    """Two posts of the org waiting for approval: one with an X-style override, one plain."""
    assert (await api.graphql(SET_POLICY, {"p": {"requiresApproval": True, "stages": list(stages)}}, key=org.secret))["data"]
    account = (await api.graphql(CONNECT, {"h": "brand"}, key=org.secret))["data"]["connectAccount"]["account"]["id"]
    ids = []
    for text in ("Launch day <b>soon</b> 🎉", "The other post"):
        body = await api.graphql(CREATE, {"i": {"text": text, "targets": [{"accountId": account}],
                                                "overrides": [{"provider": "sandbox", "text": text + " (sandbox cut)"}]}}, key=org.secret)
        assert body["data"]["createPost"]["userErrors"] == [], body
        ids.append(body["data"]["createPost"]["post"]["id"])
        await api.graphql(SUBMIT, {"id": ids[-1]}, key=org.secret)
    return ids[0], ids[1]


async def _link(api, org, **input) -> dict:
    body = await api.graphql(LINK, {"i": input}, key=org.secret)
    return body["data"]["createPreviewLink"]


def _path(url: str) -> str:
    return httpx.URL(url).path


async def test_the_page_shows_each_target_as_its_platform_will_and_escapes_it(api):
    org = await make_org_with_key(api.runtime)
    first, _ = await _ready(api, org)
    made = await _link(api, org, postId=first, expiresIn=3600)
    assert made["userErrors"] == [] and made["previewLink"]["postIds"] == [first] and made["previewLink"]["stage"] == "REVIEW"
    page = await api.http.get(_path(made["previewLink"]["url"]))
    assert page.status_code == 200
    assert "form-action 'self'" in page.headers["content-security-policy"] and "script-src" not in page.headers["content-security-policy"]
    assert "Launch day &lt;b&gt;soon&lt;/b&gt; 🎉 (sandbox cut)" in page.text and "<b>soon" not in page.text
    assert 'data-provider="sandbox"' in page.text and "@brand" in page.text
    assert "The other post" not in page.text  # only the link's posts


async def test_a_link_approves_only_its_posts_at_its_stage(api):
    org = await make_org_with_key(api.runtime)
    first, second = await _ready(api, org)
    path = _path((await _link(api, org, postIds=[first], expiresIn=3600))["previewLink"]["url"])
    other = await api.http.post(path, data={"post_id": second, "action": "approve"})
    assert other.status_code == 403 and 'data-code="FORBIDDEN"' in other.text
    sneaky = await api.http.post(path, data={"post_id": first, "action": "comment", "comment": "hi"})
    assert sneaky.status_code == 400 and 'data-code="INVALID_ACTION"' in sneaky.text
    done = await api.http.post(path, data={"post_id": first, "action": "approve", "comment": "Looks great"}, follow_redirects=False)
    assert done.status_code == 303
    approval = (await api.graphql(APPROVAL, {"id": first}, key=org.secret))["data"]["post"]["approval"]
    assert approval["status"] == "APPROVED"
    assert approval["comments"][-1] == {"action": "approved", "comment": "Looks great", "via": "preview", "authorKeyId": org.api_key_id}
    untouched = (await api.graphql(APPROVAL, {"id": second}, key=org.secret))["data"]["post"]["approval"]
    assert untouched["status"] == "PENDING"


async def test_a_two_stage_link_acts_at_the_clients_stage_only(api):
    org = await make_org_with_key(api.runtime)
    first, _ = await _ready(api, org, stages=("REVIEW", "CLIENT"))
    path = _path((await _link(api, org, postId=first, expiresIn=3600))["previewLink"]["url"])
    early = await api.http.post(path, data={"post_id": first, "action": "approve"})
    assert early.status_code == 400 and 'data-code="WRONG_STAGE"' in early.text
    assert "<form" not in (await api.http.get(path)).text  # nothing to decide until the review passed


async def test_a_link_dies_with_the_key_that_made_it_and_with_its_organization(api):
    org = await make_org_with_key(api.runtime)
    first, _ = await _ready(api, org)
    async with api.runtime.database.write() as session:
        maker = await mint_key(session, org.organization_id, ["posts:read", "approvals:review"])
    made = await api.graphql(LINK, {"i": {"postId": first, "expiresIn": 3600}}, key=maker.secret)
    path = _path(made["data"]["createPreviewLink"]["previewLink"]["url"])
    assert (await api.http.get(path)).status_code == 200
    async with api.runtime.database.write() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == maker.key.id).values(revoked_at=utcnow()))
    for response in (await api.http.get(path), await api.http.post(path, data={"post_id": first, "action": "approve"})):
        assert response.status_code == 410 and 'data-code="REVOKED"' in response.text
    assert (await api.graphql(APPROVAL, {"id": first}, key=org.secret))["data"]["post"]["approval"]["status"] == "PENDING"
    live = _path((await _link(api, org, postId=first, expiresIn=3600))["previewLink"]["url"])
    async with api.runtime.database.write() as session:
        await session.execute(update(Organization).where(Organization.id == org.organization_id).values(status="suspended"))
    assert (await api.http.get(live)).status_code == 410


async def test_bad_link_requests_are_refused_with_codes(api):
    org = await make_org_with_key(api.runtime)
    first, _ = await _ready(api, org)
    for input, code in (
        ({"postIds": [], "expiresIn": 3600}, "INVALID_POST_IDS"),
        ({"postId": first, "expiresIn": 10}, "INVALID_EXPIRY"),
        ({"postId": "post_" + "x" * 24, "expiresIn": 3600}, "POST_NOT_FOUND"),
    ):
        assert [e["code"] for e in (await _link(api, org, **input))["userErrors"]] == [code]
    other = await make_org_with_key(api.runtime, "Other")
    assert [e["code"] for e in (await _link(api, other, postId=first, expiresIn=3600))["userErrors"]] == ["POST_NOT_FOUND"]
    async with api.runtime.database.write() as session:
        reader = (await mint_key(session, org.organization_id, ["posts:read"])).secret  # may read, may not approve
    refused = await api.graphql(LINK, {"i": {"postId": first, "expiresIn": 3600}}, key=reader)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_tokens_refuse_tampering_expiry_and_other_keys():
    key = b"k" * 32
    grant = PreviewGrant("org_1", ("post_1",), "client", "key_1", (utcnow() + timedelta(hours=1)).replace(microsecond=0))
    token = sign(key, grant)
    assert open_link(key, token) == grant
    head, body, signature = token.split(".")
    forged = base64.urlsafe_b64encode(base64.urlsafe_b64decode(body + "==").replace(b"post_1", b"post_2")).rstrip(b"=").decode()
    for bad in (f"{head}.{forged}.{signature}", token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "not-a-token"):
        with pytest.raises(PreviewRefused) as refused:
            open_link(key, bad)
        assert refused.value.code == "INVALID"
    with pytest.raises(PreviewRefused) as wrong_key:
        open_link(b"j" * 32, token)
    assert wrong_key.value.code == "INVALID"
    with pytest.raises(PreviewRefused) as expired:
        open_link(key, token, now=grant.expires_at + timedelta(seconds=1))
    assert expired.value.code == "EXPIRED"


# -- in headless Chromium -------------------------------------------------------------------------

SECRET = base64.urlsafe_b64encode(b"p" * 32).decode()


@pytest.mark.e2e
@needs_chromium
def test_a_client_approves_in_the_browser_and_the_link_refuses_the_rest(tmp_path):
    with serve(tmp_path, "--demo", env={"SOCIALGATE_SECRET_KEY": SECRET}) as server:
        key = [line for line in server.stdout().split() if line.startswith("sg_live_")][0]
        assert graphql(server, key, SET_POLICY, {"p": {"requiresApproval": True}})["setApprovalPolicy"]["userErrors"] == []
        account = sandbox_account(server, key, "browser")
        ids = []
        for text in ("Hello <i>client</i>", "Not for this link"):
            created = graphql(server, key, CREATE, {"i": {"text": text, "targets": [{"accountId": account}]}})["createPost"]
            ids.append(created["post"]["id"])
            graphql(server, key, SUBMIT, {"id": ids[-1]})
        link = graphql(server, key, LINK, {"i": {"postId": ids[0], "expiresIn": 3600}})["createPreviewLink"]["previewLink"]
        url = server.base_url + _path(link["url"])

        with chromium() as browser:
            page = browser.new_page()
            problems = page_problems(page)
            page.goto(url)
            section = f'section[data-post-id="{ids[0]}"]'
            page.wait_for_selector(section, timeout=WAIT_MS)
            assert page.text_content(f"{section} .target .text") == "Hello <i>client</i>"  # text, not markup
            assert page.query_selector(f"{section} i") is None
            assert page.query_selector(f'section[data-post-id="{ids[1]}"]') is None

            # The same form, pointed at another post, is refused by the server.
            page.eval_on_selector(f'{section} input[name="post_id"]', f'(input) => input.value = "{ids[1]}"')
            page.click(f'{section} button[value="approve"]')
            page.wait_for_selector('.refused[data-code="FORBIDDEN"]', timeout=WAIT_MS)

            page.goto(url)
            page.fill(f"{section} textarea", "Approved from the browser")
            page.click(f'{section} button[value="approve"]')
            page.wait_for_selector(f'{section} .approval[data-status="approved"]', timeout=WAIT_MS)
            assert page.query_selector(f"{section} form") is None  # decided: nothing more to do
            page.screenshot(path=str(tmp_path / "preview.png"), full_page=True)

            secret = base64.urlsafe_b64decode(SECRET)
            granted = open_link(secret, _path(link["url"]).rsplit("/", 1)[1])
            expired = sign(secret, dataclasses.replace(granted, expires_at=(utcnow() - timedelta(minutes=1)).replace(microsecond=0)))
            response = page.goto(f"{server.base_url}/preview/{expired}")
            assert response.status == 410 and page.query_selector('.refused[data-code="EXPIRED"]')
            tampered = _path(link["url"]).rsplit("/", 1)[1][:-3] + "abc"
            response = page.goto(f"{server.base_url}/preview/{tampered}")
            assert response.status == 404 and page.query_selector('.refused[data-code="INVALID"]')
            assert [p for p in problems if "status of 4" not in p] == []

        statuses = [graphql(server, key, APPROVAL, {"id": i})["post"]["approval"]["status"] for i in ids]
        assert statuses == ["APPROVED", "PENDING"]


async def test_a_link_for_a_campaign_shows_every_post_of_that_campaign(api):
    org = await make_org_with_key(api.runtime)
    first, second = await _ready(api, org)
    made = await api.graphql("""mutation { createCampaign(input: {name: "Launch"}) { campaign { id } userErrors { code } } }""", key=org.secret)
    campaign = made["data"]["createCampaign"]["campaign"]["id"]
    moved = await api.graphql(
        """mutation($c: ID!, $p: [ID!]!) { movePostsToCampaign(input: {campaignId: $c, postIds: $p}) { userErrors { code } } }""",
        {"c": campaign, "p": [first, second]}, key=org.secret,
    )
    assert moved["data"]["movePostsToCampaign"]["userErrors"] == [], moved
    link = await _link(api, org, campaignId=campaign, expiresIn=3600)
    assert link["userErrors"] == [] and link["previewLink"]["postIds"] == [first, second]
    unknown = await _link(api, org, campaignId="camp_" + "a" * 24, expiresIn=3600)
    assert unknown["previewLink"] is None and [e["code"] for e in unknown["userErrors"]] == ["CAMPAIGN_NOT_FOUND"]
