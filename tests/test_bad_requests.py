"""Requests refused before GraphQL runs answer JSON with a code and the request id (issue 11.5, 11.7, 11.10).

Each used to be a plain-text 400 or 500 without a request id; an upload without a key used to be
spooled to disk in full before it was refused.
"""

import json

import httpx
import pytest

from tests.lifespan import lifespan_of

UPLOAD = "mutation($f: Upload!) { uploadMedia(input: {file: $f}) { mediaAsset { id } userErrors { code } } }"


def _refusal(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code, error
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    return error


def _operations(query: str = UPLOAD, variables: dict | None = None) -> str:
    return json.dumps({"query": query, "variables": {"f": None} if variables is None else variables})


@pytest.mark.parametrize(
    "body",
    [b"null", b'"a string"', b"123", b'{"query": "{ viewer { apiKeyId } }", "variables": "\xff"}', b"[" * 1200 + b"]" * 1200,
     b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 1200 + b"]" * 1200 + b"}}", b"{nope",
     b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 63 + b"]" * 63 + b"}}"],
    ids=["null", "json-string", "json-number", "invalid-utf8", "nested-1200", "nested-variables", "not-json", "nested-65"],
)
async def test_a_malformed_json_body_is_a_coded_400(api, org, body):
    response = await api.http.post(
        "/graphql", content=body, headers={"content-type": "application/json", "authorization": f"Bearer {org.secret}"}
    )
    _refusal(response, 400, "BAD_REQUEST")


async def test_a_body_with_many_brackets_but_shallow_is_taken(api, org):
    """More brackets than the depth limit, none deeper than three levels: the walk finds it shallow."""
    body = json.dumps({"query": "{ __typename }", "variables": {"a": [[] for _ in range(200)]}}).encode()
    response = await api.http.post(
        "/graphql", content=body, headers={"content-type": "application/json", "authorization": f"Bearer {org.secret}"}
    )
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("query", 5), ("variables", [1]), ("operationName", {"a": 1}), ("extensions", "x")],
)
async def test_request_members_of_the_wrong_type_are_coded_400s(api, org, field, value):
    body = {"query": "{ viewer { apiKeyId } }", field: value}
    response = await api.http.post("/graphql", json=body, headers={"authorization": f"Bearer {org.secret}"})
    assert f"`{field}`" in _refusal(response, 400, "BAD_REQUEST")["message"]


async def test_an_operation_name_no_document_defines_is_a_coded_400_even_when_it_is_not_unicode(api, org):
    body = json.dumps({"query": "query A { viewer { apiKeyId } }", "operationName": "\ud800"}).encode()
    response = await api.http.post(
        "/graphql", content=body, headers={"content-type": "application/json", "authorization": f"Bearer {org.secret}"}
    )
    assert "Unknown operation" in _refusal(response, 400, "BAD_REQUEST")["message"]


async def test_a_get_with_variables_nested_too_deep_is_a_coded_400(api, org):
    params = {"query": "{ __typename }", "variables": "[" * 1200 + "]" * 1200}
    response = await api.http.get("/graphql", params=params, headers={"authorization": f"Bearer {org.secret}"})
    _refusal(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    ("data", "files"),
    [
        ({"operations": _operations(), "map": json.dumps({"0": ["variables.f.a.b.c"]})}, {"0": ("a.png", b"x")}),
        ({"operations": _operations(), "map": json.dumps({"0": ["query"]})}, {"0": ("a.png", b"x")}),
        ({"operations": _operations(), "map": json.dumps({"0": "variables.f"})}, {"0": ("a.png", b"x")}),
        ({"operations": _operations(), "map": json.dumps({"1": ["variables.f"]})}, {"0": ("a.png", b"x")}),
        ({"operations": _operations(), "map": json.dumps(["variables.f"])}, {"0": ("a.png", b"x")}),
        ({"operations": "null", "map": "{}"}, {"0": ("a.png", b"x")}),
        ({"operations": "{nope", "map": "{}"}, {"0": ("a.png", b"x")}),
        ({"map": json.dumps({"0": ["variables.f"]})}, {"0": ("a.png", b"x")}),
    ],
    ids=["map-path-into-nothing", "map-path-outside-variables", "map-paths-not-a-list", "map-names-a-missing-part",
         "map-not-an-object", "operations-null", "operations-not-json", "operations-missing"],
)
async def test_a_malformed_multipart_request_is_a_coded_400(api, org, data, files):
    response = await api.http.post("/graphql", data=data, files=files, headers={"authorization": f"Bearer {org.secret}"})
    _refusal(response, 400, "BAD_REQUEST")


async def test_a_multipart_request_with_too_many_files_is_a_coded_400(api, org):
    files = [(str(i), (f"{i}.txt", b"x")) for i in range(1001)]  # Starlette's parser stops at 1,000
    response = await api.http.post("/graphql", data={"operations": _operations(), "map": "{}"}, files=files,
                                   headers={"authorization": f"Bearer {org.secret}"})
    assert "Too many files" in _refusal(response, 400, "BAD_REQUEST")["message"]


async def test_an_unsupported_content_type_and_a_batch_are_coded_400s(api, org):
    auth = {"authorization": f"Bearer {org.secret}"}
    plain = await api.http.post("/graphql", content=b"{ viewer { apiKeyId } }", headers={"content-type": "text/plain", **auth})
    assert "text/plain" in _refusal(plain, 400, "BAD_REQUEST")["message"]
    batch = await api.http.post("/graphql", json=[{"query": "{ __typename }"}], headers=auth)
    assert "Batched" in _refusal(batch, 400, "BAD_REQUEST")["message"]


async def test_a_mutation_over_get_is_a_coded_405(api, org):
    response = await api.http.get("/graphql", params={"query": "mutation { __typename }"}, headers={"authorization": f"Bearer {org.secret}"})
    _refusal(response, 405, "METHOD_NOT_ALLOWED")


async def test_an_unexpected_error_while_reading_a_request_is_json_with_the_request_id(settings, monkeypatch, caplog):
    
    from gateway.app import create_app
    from schema.http import GraphQLView

    async def broken(self, request):
        raise RuntimeError("a bug")

    monkeypatch.setattr(GraphQLView, "parse_http_body", broken)
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post("/graphql", json={"query": "{ __typename }"})
    error = _refusal(response, 500, "INTERNAL")
    assert error["message"] == "Internal server error." and "a bug" not in response.text
    [logged] = [r for r in caplog.records if r.name == "socialgate.http"]
    assert logged.request_id == error["extensions"]["requestId"] and logged.exc_info[1].args == ("a bug",)


# Issue 11.7: an upload is refused before its body is read when the key is missing or invalid.


class _RecordingBody:
    """A streaming multipart body that counts the bytes the server pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.boundary = "socialgate-test-boundary"
        head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{_operations()}\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{{"0": ["variables.f"]}}\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="0"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        self.parts = [head] + [b"\0" * chunk] * (total // chunk) + [f"\r\n--{self.boundary}--\r\n".encode()]
        self.read = 0

    async def __aiter__(self):
        for part in self.parts:
            self.read += len(part)
            yield part


@pytest.mark.parametrize("authorization", [None, "Bearer sg_live_" + "x" * 44, "Basic abc"], ids=["missing", "unknown", "not-bearer"])
async def test_an_upload_without_a_valid_key_is_refused_before_its_body_is_read(api, authorization):
    body = _RecordingBody(total=20 * 1024 * 1024)
    headers = {"content-type": f"multipart/form-data; boundary={body.boundary}"}
    if authorization:
        headers["authorization"] = authorization
    response = await api.http.post("/graphql", content=body, headers=headers)
    assert body.read < 1024 * 1024, f"{body.read} bytes were read before the key was checked"
    _refusal(response, 401, "UNAUTHENTICATED")
    assert response.headers["connection"] == "close"


async def test_an_upload_with_a_valid_key_is_read_and_stored(api, org):
    from tests.media_samples import png

    response = await api.http.post(
        "/graphql",
        data={"operations": _operations(), "map": json.dumps({"0": ["variables.f"]})},
        files={"0": ("pixel.png", png(2, 2), "image/png")},
        headers={"authorization": f"Bearer {org.secret}"},
    )
    assert response.status_code == 200
    payload = response.json()["data"]["uploadMedia"]
    assert payload["userErrors"] == [] and payload["mediaAsset"]["id"].startswith("med_")


class _SyncRecordingBody(_RecordingBody):
    def __iter__(self):
        for part in self.parts:
            self.read += len(part)
            yield part


@pytest.mark.e2e
def test_the_real_server_refuses_an_unauthenticated_upload_after_a_few_buffers_not_the_whole_file(tmp_path):
    from tests.servers import serve

    body = _SyncRecordingBody(total=64 * 1024 * 1024)
    with serve(tmp_path) as server:
        response = httpx.post(server.base_url + "/graphql", content=iter(body), timeout=60,
                              headers={"content-type": f"multipart/form-data; boundary={body.boundary}"})
    # What the sockets' buffers took before the answer came, a few MiB at most: not the 64 MiB file.
    assert body.read < 16 * 1024 * 1024, body.read
    assert response.status_code == 401 and response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
