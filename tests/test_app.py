import json
import logging

from gateway.core.logs import JsonFormatter
from gateway.core.request_context import current_request_id
from schema.errors import shape_error


async def test_healthz_and_readyz(api):
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "scheduler": "ok"}


async def test_readyz_reports_an_unreachable_database(api):
    async def broken_ping():
        raise OSError("database is gone")

    api.runtime.database.ping = broken_ping
    ready = await api.http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"


async def test_request_id_is_echoed_or_made_up(api):
    echoed = await api.http.get("/healthz", headers={"X-Request-Id": "client-chosen.42"})
    assert echoed.headers["x-request-id"] == "client-chosen.42"
    made_up = await api.http.get("/healthz", headers={"X-Request-Id": "bad id\nwith newline"})
    assert made_up.headers["x-request-id"].startswith("req_")
    assert (await api.http.get("/healthz")).headers["x-request-id"].startswith("req_")


async def test_graphql_errors_carry_the_request_id_from_the_header(api):
    response = await api.http.post("/graphql", json={"query": "{ viewer { scopes } }"}, headers={"X-Request-Id": "trace-1"})
    assert response.json()["errors"][0]["extensions"]["requestId"] == "trace-1"


async def test_graphql_get_and_graphiql(api, org):
    response = await api.http.get(
        "/graphql", params={"query": "{ viewer { apiKeyId } }"}, headers={"Authorization": f"Bearer {org.secret}"}
    )
    assert response.json()["data"]["viewer"]["apiKeyId"] == org.api_key_id
    page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_validation_errors_are_coded(api, org):
    body = await api.graphql("{ viewer { nope } }", key=org.secret)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_unexpected_errors_are_masked_and_logged(caplog):
    from graphql import GraphQLError

    token = current_request_id.set("req_test")
    try:
        original = RuntimeError("password=hunter2 leaked in a message")
        with caplog.at_level(logging.ERROR, logger="socialgate.graphql"):
            shaped = shape_error(GraphQLError("boom", original_error=original))
    finally:
        current_request_id.reset(token)
    assert shaped.message == "Internal server error."
    assert shaped.extensions == {"code": "INTERNAL", "requestId": "req_test"}
    assert "hunter2" in caplog.text  # the log keeps the detail for the operator


def test_json_log_lines_carry_the_request_id():
    token = current_request_id.set("req_abc")
    try:
        record = logging.makeLogRecord({"msg": "hello %s", "args": ("world",), "levelname": "INFO", "name": "t"})
        line = json.loads(JsonFormatter().format(record))
    finally:
        current_request_id.reset(token)
    assert line["message"] == "hello world"
    assert line["request_id"] == "req_abc"
    assert line["level"] == "INFO"


def test_media_tokens_never_reach_the_access_log():
    from gateway.core.logs import HideMediaTokens

    record = logging.makeLogRecord(
        {"msg": '%s - "%s %s HTTP/%s" %d', "args": ("127.0.0.1:5", "GET", "/media/med_x/SECRETTOKEN/a.png", "1.1", 200)}
    )
    HideMediaTokens().filter(record)
    assert "SECRETTOKEN" not in record.getMessage()
    assert "/media/med_x/…/a.png" in record.getMessage()
