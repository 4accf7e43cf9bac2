"""The webhooks API: endpoints (secret once, rotation), the deliveries log with attempts, replay, tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from gateway.events import record_org_event
from gateway.settings import load_settings
from tests.conftest import make_org_with_key
from tests.waiting import until
from tests.webhook_receiver import running_receiver

ENDPOINT = "id url description eventTypes scope enabled disabledReason secretRotationEndsAt"
CREATE = f"""mutation($i: CreateWebhookEndpointInput!) {{ createWebhookEndpoint(input: $i) {{
  webhookEndpoint {{ {ENDPOINT} }} secret userErrors {{ field code message }} }} }}"""
DELIVERIES = """query($e: ID!, $s: WebhookDeliveryStatus, $first: Int, $after: String) {
  webhookDeliveries(endpointId: $e, status: $s, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id endpointId eventType status attemptCount payload lastStatusCode lastError
            attempts { number statusCode error durationMs responseExcerpt startedAt finishedAt } } } }"""


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), allow_private_urls=True,
    )


@pytest.fixture
async def receiver():
    async with running_receiver() as running:
        yield running


async def create(api, key: str, **fields) -> dict:
    body = await api.graphql(CREATE, {"i": {"eventTypes": ["*"], **fields}}, key=key)
    assert "errors" not in body, body
    return body["data"]["createWebhookEndpoint"]


async def mutate(api, key: str, name: str, input_type: str, value: dict, selection: str) -> dict:
    body = await api.graphql(f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ {selection} userErrors {{ code field }} }} }}",
                             {"i": value}, key=key)
    assert "errors" not in body, body
    return body["data"][name]


async def emit(api, organization_id: str, kind: str = "account.connected") -> None:
    async with api.runtime.database.write() as session:
        event = await record_org_event(session, organization_id, kind, {"accountId": "acct_x"})
    await api.runtime.publish(event)


async def listed(api, key: str, endpoint_id: str, **variables) -> dict:
    body = await api.graphql(DELIVERIES, {"e": endpoint_id, **variables}, key=key)
    assert "errors" not in body, body
    return body["data"]["webhookDeliveries"]


async def test_create_answers_the_secret_once_and_lists_without_it(api, org, receiver):
    made = await create(api, org.secret, url=receiver.url("/h"), eventTypes=["post.*", "account.connected"], description="crm")
    assert made["userErrors"] == [] and made["secret"].startswith("whsec_")
    endpoint = made["webhookEndpoint"]
    assert endpoint["id"].startswith("whk_") and endpoint["scope"] == "OWN" and endpoint["enabled"] is True
    assert endpoint["eventTypes"] == ["post.*", "account.connected"]
    body = await api.graphql("{ webhookEndpoints(first: 10) { totalCount nodes { id url } } }", key=org.secret)
    assert body["data"]["webhookEndpoints"] == {"totalCount": 1, "nodes": [{"id": endpoint["id"], "url": receiver.url("/h")}]}
    assert made["secret"] not in str(body)
    node = await api.graphql('query($id: ID!) { node(id: $id) { __typename ... on WebhookEndpoint { url } } }', {"id": endpoint["id"]}, key=org.secret)
    assert node["data"]["node"] == {"__typename": "WebhookEndpoint", "url": receiver.url("/h")}


async def test_an_idempotent_replay_of_create_returns_the_endpoint_without_its_secret(api, org, receiver):
    first = await create(api, org.secret, url=receiver.url("/h"), idempotencyKey="k1")
    again = await create(api, org.secret, url=receiver.url("/h"), idempotencyKey="k1")
    assert again["webhookEndpoint"]["id"] == first["webhookEndpoint"]["id"]
    assert first["secret"] and again["secret"] is None


@pytest.mark.parametrize(("fields", "code", "field"), [
    ({"url": "file:///etc/passwd"}, "URL_SCHEME_NOT_ALLOWED", ["url"]),
    ({"url": "http://user:pw@example.com/h"}, "URL_INVALID", ["url"]),  # credentials would end up in logs
    ({"url": "https://example.com/h", "eventTypes": ["nope.happened"]}, "EVENT_TYPE_UNKNOWN", ["eventTypes", "0"]),
    ({"url": "https://example.com/h", "eventTypes": []}, "EVENT_TYPES_REQUIRED", ["eventTypes"]),
    ({"url": "https://example.com/h", "description": "d" * 501}, "DESCRIPTION_TOO_LONG", ["description"]),
])
async def test_bad_input_is_a_coded_user_error(api, org, fields, code, field):
    made = await create(api, org.secret, **fields)
    [error] = made["userErrors"]
    assert (error["code"], error["field"]) == (code, field)
    assert made["webhookEndpoint"] is None and made["secret"] is None


async def test_all_children_needs_org_admin_on_the_key(api, org, receiver):
    narrow = await make_org_with_key(api.runtime, "Narrow", scopes=["webhooks:*"])
    refused = await create(api, narrow.secret, url=receiver.url("/h"), scope="ALL_CHILDREN")
    assert [e["code"] for e in refused["userErrors"]] == ["ORG_ADMIN_REQUIRED"]
    allowed = await create(api, org.secret, url=receiver.url("/h"), scope="ALL_CHILDREN")
    assert allowed["webhookEndpoint"]["scope"] == "ALL_CHILDREN"


async def test_update_enable_disable_delete(api, org, receiver):
    endpoint_id = (await create(api, org.secret, url=receiver.url("/h")))["webhookEndpoint"]["id"]
    ref = {"id": endpoint_id}
    updated = await mutate(api, org.secret, "updateWebhookEndpoint", "UpdateWebhookEndpointInput",
                           {**ref, "url": receiver.url("/new"), "eventTypes": ["job.*"], "description": "jobs"},
                           "webhookEndpoint { url eventTypes description }")
    assert updated["webhookEndpoint"] == {"url": receiver.url("/new"), "eventTypes": ["job.*"], "description": "jobs"}
    off = await mutate(api, org.secret, "disableWebhookEndpoint", "WebhookEndpointIdInput", ref, "webhookEndpoint { enabled disabledReason }")
    assert off["webhookEndpoint"] == {"enabled": False, "disabledReason": "manual"}
    on = await mutate(api, org.secret, "enableWebhookEndpoint", "WebhookEndpointIdInput", ref, "webhookEndpoint { enabled disabledReason }")
    assert on["webhookEndpoint"] == {"enabled": True, "disabledReason": None}
    gone = await mutate(api, org.secret, "deleteWebhookEndpoint", "WebhookEndpointIdInput", ref, "webhookEndpoint { id }")
    assert gone["webhookEndpoint"]["id"] == endpoint_id
    again = await mutate(api, org.secret, "deleteWebhookEndpoint", "WebhookEndpointIdInput", ref, "webhookEndpoint { id }")
    assert again["userErrors"] == [{"code": "WEBHOOK_ENDPOINT_NOT_FOUND", "field": ["id"]}]
    body = await api.graphql("{ webhookEndpoints { totalCount } }", key=org.secret)
    assert body["data"]["webhookEndpoints"]["totalCount"] == 0


async def test_another_organizations_endpoint_is_not_found(api, org, receiver):
    other = await make_org_with_key(api.runtime, "Other")
    endpoint_id = (await create(api, other.secret, url=receiver.url("/h")))["webhookEndpoint"]["id"]
    for name in ("disableWebhookEndpoint", "rotateWebhookSecret", "deleteWebhookEndpoint"):
        answer = await mutate(api, org.secret, name, "WebhookEndpointIdInput", {"id": endpoint_id}, "webhookEndpoint { id }")
        assert answer["userErrors"] == [{"code": "WEBHOOK_ENDPOINT_NOT_FOUND", "field": ["id"]}], name
    body = await api.graphql(DELIVERIES, {"e": endpoint_id}, key=org.secret)
    assert body["data"]["webhookDeliveries"] is None


async def test_the_scopes_are_checked(api, receiver):
    reader = await make_org_with_key(api.runtime, "Reader", scopes=["webhooks:read"])
    body = await api.graphql(CREATE, {"i": {"url": receiver.url("/h"), "eventTypes": ["*"]}}, key=reader.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    blind = await make_org_with_key(api.runtime, "Blind", scopes=["posts:read"])
    body = await api.graphql("{ webhookEndpoints { totalCount } }", key=blind.secret)
    assert body["data"]["webhookEndpoints"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_rotate_answers_a_new_secret_and_both_sign_during_the_overlap(api, org, receiver):
    made = await create(api, org.secret, url=receiver.url("/rot"))
    endpoint_id, old = made["webhookEndpoint"]["id"], made["secret"]
    rotated = await mutate(api, org.secret, "rotateWebhookSecret", "WebhookEndpointIdInput", {"id": endpoint_id},
                           "secret webhookEndpoint { secretRotationEndsAt }")
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old
    ends = datetime.fromisoformat(rotated["webhookEndpoint"]["secretRotationEndsAt"])
    assert timedelta(hours=23, minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=24)
    await emit(api, org.organization_id)
    [request] = await receiver.wait_for("/rot", 1)
    assert Webhook(old).verify(request.body, request.headers) == Webhook(new).verify(request.body, request.headers)


async def test_deliveries_list_their_attempts_and_filter_by_status(api, org, receiver):
    endpoint_id = (await create(api, org.secret, url=receiver.url("/log")))["webhookEndpoint"]["id"]
    receiver.script("/log", (500, {}, b"oops"))
    await emit(api, org.organization_id)
    await receiver.wait_for("/log", 1)
    await until(lambda: _has_attempts(api, org.secret, endpoint_id, 1))
    page = await listed(api, org.secret, endpoint_id)
    [delivery] = page["nodes"]
    assert delivery["id"].startswith("whd_") and delivery["endpointId"] == endpoint_id
    assert (delivery["status"], delivery["attemptCount"], delivery["lastStatusCode"], delivery["lastError"]) == ("PENDING", 1, 500, "HTTP_500")
    assert delivery["payload"]["type"] == "account.connected"
    [attempt] = delivery["attempts"]
    assert (attempt["number"], attempt["statusCode"], attempt["error"], attempt["responseExcerpt"]) == (1, 500, "HTTP_500", "oops")
    assert attempt["durationMs"] >= 0
    assert (await listed(api, org.secret, endpoint_id, s="DELIVERED"))["totalCount"] == 0
    assert (await listed(api, org.secret, endpoint_id, s="PENDING"))["totalCount"] == 1


async def _has_attempts(api, key: str, endpoint_id: str, count: int, status: str | None = None) -> bool:
    nodes = (await listed(api, key, endpoint_id))["nodes"]
    return bool(nodes) and all(len(n["attempts"]) >= count and (status is None or n["status"] == status) for n in nodes)


async def test_deliveries_page_forward(api, org, receiver):
    endpoint_id = (await create(api, org.secret, url=receiver.url("/many")))["webhookEndpoint"]["id"]
    for _ in range(3):
        await emit(api, org.organization_id)
    first = await listed(api, org.secret, endpoint_id, first=2)
    assert len(first["nodes"]) == 2 and first["pageInfo"]["hasNextPage"] is True
    rest = await listed(api, org.secret, endpoint_id, first=2, after=first["pageInfo"]["endCursor"])
    assert len(rest["nodes"]) == 1 and {n["id"] for n in rest["nodes"]}.isdisjoint({n["id"] for n in first["nodes"]})


async def test_replay_sends_the_same_delivery_again_with_its_webhook_id(api, org, receiver):
    made = await create(api, org.secret, url=receiver.url("/again"))
    endpoint_id = made["webhookEndpoint"]["id"]
    await emit(api, org.organization_id)
    [first] = await receiver.wait_for("/again", 1)
    await until(lambda: _has_attempts(api, org.secret, endpoint_id, 1, "DELIVERED"))
    replayed = await mutate(api, org.secret, "replayWebhookDelivery", "WebhookDeliveryIdInput",
                            {"id": first.headers["webhook-id"]}, "webhookDelivery { id status }")
    assert replayed["webhookDelivery"]["id"] == first.headers["webhook-id"]
    _, second = await receiver.wait_for("/again", 2)
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert Webhook(made["secret"]).verify(second.body, second.headers)["type"] == "account.connected"
    unknown = await mutate(api, org.secret, "replayWebhookDelivery", "WebhookDeliveryIdInput", {"id": "whd_" + "x" * 24}, "webhookDelivery { id }")
    assert unknown["userErrors"] == [{"code": "WEBHOOK_DELIVERY_NOT_FOUND", "field": ["id"]}]


async def test_replay_since_resends_what_failed_during_an_outage(api, org, receiver):
    endpoint_id = (await create(api, org.secret, url=receiver.url("/outage")))["webhookEndpoint"]["id"]
    receiver.script("/outage", (410, {}, b""))  # gone: the endpoint is disabled, the delivery failed
    before = datetime.now(UTC) - timedelta(minutes=1)
    await emit(api, org.organization_id)
    await until(lambda: _has_attempts(api, org.secret, endpoint_id, 1, "FAILED"))
    await mutate(api, org.secret, "enableWebhookEndpoint", "WebhookEndpointIdInput", {"id": endpoint_id}, "webhookEndpoint { id }")
    future = await mutate(api, org.secret, "replayWebhookDeliveries", "ReplayWebhookDeliveriesInput",
                          {"endpointId": endpoint_id, "since": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "replayedCount")
    assert future["userErrors"] == [{"code": "SINCE_IN_FUTURE", "field": ["since"]}]
    replay = await mutate(api, org.secret, "replayWebhookDeliveries", "ReplayWebhookDeliveriesInput",
                          {"endpointId": endpoint_id, "since": before.isoformat()}, "replayedCount")
    assert replay == {"replayedCount": 1, "userErrors": []}
    first, second = await receiver.wait_for("/outage", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    await until(lambda: _has_attempts(api, org.secret, endpoint_id, 2, "DELIVERED"))


async def test_send_test_webhook_reaches_that_endpoint_alone(api, org, receiver):
    made = await create(api, org.secret, url=receiver.url("/test"))
    await create(api, org.secret, url=receiver.url("/bystander"))
    sent = await mutate(api, org.secret, "sendTestWebhook", "SendTestWebhookInput", {"endpointId": made["webhookEndpoint"]["id"]},
                        "webhookDelivery { id eventType }")
    assert sent["webhookDelivery"]["eventType"] == "webhook.test"
    [request] = await receiver.wait_for("/test", 1)
    body = Webhook(made["secret"]).verify(request.body, request.headers)
    assert body["type"] == "webhook.test" and body["data"]["endpointId"] == made["webhookEndpoint"]["id"]
    assert request.headers["webhook-id"] == sent["webhookDelivery"]["id"]
    assert receiver.at("/bystander") == []
