"""Media: formats, multipart upload through the HTTP app, registerMedia, serving, delete, isolation.

Uploads follow the GraphQL multipart request spec (operations, map, file parts). URLs are
fetched from a scripted server on 127.0.0.1; nothing else touches the network.
"""

import hashlib
import json
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.content import media as service
from gateway.content.media import MediaLimits, receive_file
from gateway.content.media_formats import MediaKind, image_dimensions, sniff_mime
from gateway.outbound.url_guard import guarded_client
from gateway.settings import load_settings
from gateway.storage.models import MediaAsset
from tests import media_samples as samples
from tests.conftest import ApiClient, make_org_with_key
from tests.http_peer import LoopbackNetwork, Reply, fixed_resolver, scripted_server
from tests.lifespan import lifespan_of

UPLOAD = """mutation($input: UploadMediaInput!) {
  uploadMedia(input: $input) {
    mediaAsset { id kind mimeType filename sizeBytes sha256 width height durationMs altText url createdAt }
    userErrors { field code message }
  }
}"""
REGISTER = """mutation($input: RegisterMediaInput!) {
  registerMedia(input: $input) {
    mediaAsset { id kind mimeType filename sizeBytes sha256 width height url }
    userErrors { field code message }
  }
}"""
DELETE = """mutation($id: ID!) {
  deleteMedia(input: {id: $id}) { mediaAsset { id } userErrors { field code message } }
}"""
ONE = "query($id: ID!) { mediaAsset(id: $id) { id filename } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on MediaAsset { sha256 } } }"
LIST = """query($first: Int, $after: String) {
  media(first: $first, after: $after) { nodes { id filename } pageInfo { hasNextPage endCursor } }
}"""


# -- helpers --------------------------------------------------------------------------------------


async def upload(api, key, content, filename="photo.png", content_type="image/png", **input_fields):
    """POST a multipart request exactly as the GraphQL multipart request spec lays it out."""
    operations = {"query": UPLOAD, "variables": {"input": {"file": None, **input_fields}}}
    response = await api.http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": (filename, content, content_type)},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["uploadMedia"]


def stored_files(settings) -> list[Path]:
    """Every file under the media directory, temporary ones included."""
    root = settings.resolved_data_dir / "media"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


async def media_rows(api) -> list[MediaAsset]:
    async with api.runtime.database.read() as session:
        return list((await session.execute(select(MediaAsset))).scalars())


def path_of(url: str) -> str:
    return httpx.URL(url).path


def codes(payload) -> list[str]:
    return [error["code"] for error in payload["userErrors"]]


async def assert_nothing_stored(api):
    assert await media_rows(api) == []
    assert stored_files(api.runtime.settings) == []


@asynccontextmanager
async def app_client(settings):
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield ApiClient(http=http, runtime=app.state.runtime)


@pytest.fixture
async def private_api(tmp_path):
    """An app that may fetch from loopback (allow_private_urls), for the local scripted server."""
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/private.db", data_dir=str(tmp_path / "private"), allow_private_urls=True
    )
    async with app_client(settings) as client:
        yield client


async def chunks_of(*parts: bytes):
    for part in parts:
        yield part


# -- formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "mime", "size"),
    [
        (samples.png(3, 2), "image/png", (3, 2)),
        (samples.gif(5, 4), "image/gif", (5, 4)),
        (samples.jpeg(640, 480), "image/jpeg", (640, 480)),
        (samples.jpeg(800, 600, exif_bytes=60_000), "image/jpeg", (800, 600)),
        (samples.webp_lossy(320, 200), "image/webp", (320, 200)),
        (samples.webp_lossless(17, 9), "image/webp", (17, 9)),
        (samples.webp_extended(1920, 1080), "image/webp", (1920, 1080)),
        (samples.mp4(), "video/mp4", None),
        (samples.mp4(b"qt  "), "video/quicktime", None),
        (samples.pdf(), "application/pdf", None),
    ],
)
def test_formats_are_sniffed_and_measured(content, mime, size):
    assert sniff_mime(content) == mime
    assert image_dimensions(mime, content) == size


@pytest.mark.parametrize(
    "content", [b"<html><script>alert(1)</script></html>", b"<svg xmlns='http://www.w3.org/2000/svg'/>", samples.mp4(b"heic"), b""]
)
def test_other_content_is_not_recognised(content):
    assert sniff_mime(content) is None


async def test_the_cap_stops_a_long_body_at_the_cap(tmp_path):
    """An oversize body is cut off while streaming, not read to its end."""
    read = 0

    async def long_body():
        nonlocal read
        yield samples.png()
        for _ in range(10_000):  # 10 MB against a 10 kB cap
            read += 1024
            yield b"\x00" * 1024

    limits = MediaLimits({kind: 10_000 for kind in MediaKind})
    with pytest.raises(service.UserError) as refused:
        await receive_file(long_body(), "image/png", tmp_path, limits, ["input", "file"])
    assert refused.value.code == "MEDIA_TOO_LARGE"
    assert read <= 10_000 + 1024
    assert list(tmp_path.iterdir()) == []


async def test_a_tiny_file_is_sniffed_after_the_last_chunk(tmp_path):
    limits = MediaLimits({kind: 100 for kind in MediaKind})
    received = await receive_file(chunks_of(b"%PDF", b"-1.7\n"), "", tmp_path, limits, ["f"])
    assert (received.media_type.mime, received.size_bytes) == ("application/pdf", 9)
    assert received.temporary_path.read_bytes() == b"%PDF-1.7\n"


# -- uploading ------------------------------------------------------------------------------------


async def test_multipart_upload_stores_and_describes_the_file(api, org):
    content = samples.png(3, 2)
    payload = await upload(api, org.secret, content, filename="../../etc/My Photo!.png", altText="A red square")
    assert payload["userErrors"] == []
    asset = payload["mediaAsset"]
    assert asset["id"].startswith("med_")
    assert asset["kind"] == "IMAGE"
    assert asset["mimeType"] == "image/png"
    assert asset["filename"] == "My-Photo.png"  # no path, only URL-safe characters
    assert asset["sizeBytes"] == len(content)
    assert asset["sha256"] == hashlib.sha256(content).hexdigest()
    assert (asset["width"], asset["height"], asset["durationMs"]) == (3, 2, None)
    assert asset["altText"] == "A red square"
    settings = api.runtime.settings
    assert asset["url"].startswith(f"{settings.base_url}/media/{asset['id']}/")
    assert asset["url"].endswith("/My-Photo.png")
    [stored] = stored_files(settings)
    assert stored == settings.resolved_data_dir / "media" / org.organization_id / asset["id"]
    assert stored.read_bytes() == content


async def test_a_generic_declared_type_is_taken_from_the_content(api, org):
    payload = await upload(api, org.secret, samples.pdf(), filename="report", content_type="application/octet-stream")
    assert payload["userErrors"] == []
    assert payload["mediaAsset"]["kind"] == "DOCUMENT"
    assert payload["mediaAsset"]["filename"] == "report.pdf"


@pytest.mark.parametrize(
    ("content", "content_type", "code"),
    [
        (samples.png(), "image/jpeg", "MIME_TYPE_MISMATCH"),
        (samples.pdf(), "image/png", "MIME_TYPE_MISMATCH"),
        (b"<html><script>alert(1)</script></html>", "text/html", "UNSUPPORTED_MEDIA_TYPE"),
        (b"<html><script>alert(1)</script></html>", "image/png", "UNSUPPORTED_MEDIA_TYPE"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", "UNSUPPORTED_MEDIA_TYPE"),
        (b"MZ\x90\x00 an executable of sorts", "application/octet-stream", "UNSUPPORTED_MEDIA_TYPE"),
        (b"", "image/png", "EMPTY_FILE"),
    ],
)
async def test_refused_uploads_leave_nothing_behind(api, org, content, content_type, code):
    payload = await upload(api, org.secret, content, content_type=content_type)
    assert payload["mediaAsset"] is None
    assert payload["userErrors"][0]["code"] == code
    assert payload["userErrors"][0]["field"] == ["input", "file"]
    await assert_nothing_stored(api)


async def test_an_image_over_its_cap_is_refused(api, org):
    cap = service.DEFAULT_LIMITS.cap(MediaKind.IMAGE)
    content = samples.png() + b"\x00" * (cap + 1 - len(samples.png()))
    payload = await upload(api, org.secret, content)
    assert codes(payload) == ["MEDIA_TOO_LARGE"]
    await assert_nothing_stored(api)


async def test_too_long_alt_text_is_a_user_error(api, org):
    payload = await upload(api, org.secret, samples.png(), altText="x" * 1001)
    assert payload["userErrors"] == [
        {"field": ["input", "altText"], "code": "ALT_TEXT_TOO_LONG", "message": "Alt text is limited to 1000 characters."}
    ]
    await assert_nothing_stored(api)


async def test_a_string_instead_of_a_file_part_is_a_user_error(api, org):
    body = await api.graphql(UPLOAD, {"input": {"file": "not a file"}}, key=org.secret)
    assert codes(body["data"]["uploadMedia"]) == ["FILE_REQUIRED"]
    await assert_nothing_stored(api)


async def test_a_failed_commit_removes_the_moved_file(api, org):
    """The file is renamed into place inside the transaction; a rollback after that undoes it."""

    class FailsAtCommit:
        def __init__(self, database):
            self.database = database

        @asynccontextmanager
        async def write(self):
            async with self.database.write() as session:
                yield session
                raise RuntimeError("the database went away at commit")

    class Upload:
        def __init__(self, data):
            self.data = data

        async def read(self, size):
            chunk, self.data = self.data[:size], self.data[size:]
            return chunk

    with pytest.raises(RuntimeError):
        await service.upload_media(
            FailsAtCommit(api.runtime.database),
            api.runtime.settings,
            org.organization_id,
            secret_key=api.runtime.secret_key,
            source=Upload(samples.png()),
            filename="a.png",
            mime_type="image/png",
        )
    await assert_nothing_stored(api)


# -- serving --------------------------------------------------------------------------------------


async def test_the_public_url_serves_the_file(api, org):
    content = samples.gif(5, 4)
    asset = (await upload(api, org.secret, content, filename="anim.gif", content_type="image/gif"))["mediaAsset"]
    assert asset["kind"] == "GIF"
    response = await api.http.get(path_of(asset["url"]))  # no API key: platforms carry none
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["content-length"] == str(len(content))
    assert response.headers["etag"] == f'"{asset["sha256"]}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == 'inline; filename="anim.gif"'

    head = await api.http.head(path_of(asset["url"]))
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(len(content)))
    cached = await api.http.get(path_of(asset["url"]), headers={"If-None-Match": f'"{asset["sha256"]}"'})
    assert (cached.status_code, cached.content) == (304, b"")
    ranged = await api.http.get(path_of(asset["url"]), headers={"Range": "bytes=0-5"})
    assert (ranged.status_code, ranged.content) == (206, content[:6])


async def test_wrong_tokens_and_ids_are_404(api, org):
    asset = (await upload(api, org.secret, samples.png()))["mediaAsset"]
    _, _, media_id, token, filename = path_of(asset["url"]).split("/")
    other = (await upload(api, org.secret, samples.png(4, 4)))["mediaAsset"]
    other_token = path_of(other["url"]).split("/")[3]
    for path in [
        f"/media/{media_id}/{token[:-1]}x/{filename}",
        f"/media/{media_id}/{other_token}/{filename}",  # a valid token, of another asset
        f"/media/{media_id}//{filename}",
        f"/media/med_{'a' * 24}/{token}/{filename}",
        f"/media/post_{'a' * 24}/{token}/{filename}",
        f"/media/nonsense/{token}/{filename}",
    ]:
        response = await api.http.get(path)
        assert response.status_code == 404, path
        assert response.content != samples.png()


# -- registering from a URL -----------------------------------------------------------------------


async def test_register_media_fetches_from_an_allowed_url(private_api):
    org = await make_org_with_key(private_api.runtime)
    content = samples.jpeg(1024, 768)
    with scripted_server() as server:
        server.routes["/pics/cat.jpg"] = Reply(200, {"Content-Type": "image/jpeg"}, content)
        server.routes["/old"] = Reply(302, {"Location": "/pics/cat.jpg"})
        payload = (await private_api.graphql(REGISTER, {"input": {"url": server.url("/old")}}, key=org.secret))[
            "data"
        ]["registerMedia"]
    assert payload["userErrors"] == []
    asset = payload["mediaAsset"]
    assert (asset["kind"], asset["mimeType"], asset["filename"]) == ("IMAGE", "image/jpeg", "old.jpg")
    assert (asset["width"], asset["height"], asset["sizeBytes"]) == (1024, 768, len(content))
    assert asset["sha256"] == hashlib.sha256(content).hexdigest()
    served = await private_api.http.get(path_of(asset["url"]))
    assert served.content == content
    [row] = await media_rows(private_api)
    assert row.source_url == server.url("/old")


async def test_register_media_refuses_loopback_unless_allowed(api, org):
    with scripted_server() as server:
        server.routes["/cat.png"] = Reply(200, {"Content-Type": "image/png"}, samples.png())
        body = await api.graphql(REGISTER, {"input": {"url": server.url("/cat.png")}}, key=org.secret)
        assert server.requested == []
    assert body["data"]["registerMedia"]["userErrors"] == [
        {
            "field": ["input", "url"],
            "code": "URL_NOT_ALLOWED",
            "message": "The URL points to a private, loopback or reserved address.",
        }
    ]
    await assert_nothing_stored(api)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(404, {"Content-Type": "text/plain"}, b"gone"), "URL_FETCH_FAILED"),
        (Reply(200, {"Content-Type": "text/html"}, b"<html></html>"), "UNSUPPORTED_MEDIA_TYPE"),
        (Reply(200, {"Content-Type": "image/jpeg"}, samples.png()), "MIME_TYPE_MISMATCH"),
        (Reply(200, {"Content-Type": "image/png", "Content-Length": str(11 * 1024 * 1024)}, b""), "MEDIA_TOO_LARGE"),
        (Reply(302, {"Location": "ftp://127.0.0.1/x.png"}), "URL_SCHEME_NOT_ALLOWED"),
    ],
)
async def test_register_media_refusals_leave_nothing_behind(private_api, reply, code):
    org = await make_org_with_key(private_api.runtime)
    with scripted_server() as server:
        server.routes["/file"] = reply
        body = await private_api.graphql(REGISTER, {"input": {"url": server.url("/file")}}, key=org.secret)
    payload = body["data"]["registerMedia"]
    assert (payload["mediaAsset"], codes(payload)) == (None, [code])
    await assert_nothing_stored(private_api)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/a.png", "URL_SCHEME_NOT_ALLOWED"),
        ("file:///etc/passwd", "URL_SCHEME_NOT_ALLOWED"),
        ("not a url", "URL_SCHEME_NOT_ALLOWED"),
        ("https://example.com/" + "a" * 3000, "URL_TOO_LONG"),
        ("http://169.254.169.254/latest/meta-data/", "URL_NOT_ALLOWED"),
        ("http://[::1]:80/x.png", "URL_NOT_ALLOWED"),
    ],
)
async def test_register_media_refuses_bad_urls_without_fetching(api, org, url, code):
    body = await api.graphql(REGISTER, {"input": {"url": url}}, key=org.secret)
    assert codes(body["data"]["registerMedia"]) == [code]
    await assert_nothing_stored(api)


async def test_an_unreachable_url_is_a_user_error(private_api):
    org = await make_org_with_key(private_api.runtime)
    with scripted_server() as server:
        closed = server.url("/x.png")  # the port is free again once the server stops
    body = await private_api.graphql(REGISTER, {"input": {"url": closed}}, key=org.secret)
    assert codes(body["data"]["registerMedia"]) == ["URL_UNREACHABLE"]


async def test_a_source_that_trickles_is_abandoned_at_the_deadline(private_api, monkeypatch):
    monkeypatch.setattr(service, "FETCH_DEADLINE_SECONDS", 0.3)
    org = await make_org_with_key(private_api.runtime)
    with scripted_server() as server:
        server.routes["/slow.png"] = Reply(200, {"Content-Type": "image/png"}, samples.png() * 20, stall=2.0)
        body = await private_api.graphql(REGISTER, {"input": {"url": server.url("/slow.png")}}, key=org.secret)
    assert codes(body["data"]["registerMedia"]) == ["URL_FETCH_TIMEOUT"]
    await assert_nothing_stored(private_api)


async def test_a_redirect_from_a_public_host_to_a_private_one_stores_nothing(api, org):
    """The service maps the guard's refusal of a later hop to a user error, with no file left."""
    with scripted_server() as server:
        server.routes["/cat.png"] = Reply(302, {"Location": f"http://internal.test:{server.port}/secret.png"})
        server.routes["/secret.png"] = Reply(200, {"Content-Type": "image/png"}, samples.png())
        resolver = fixed_resolver({"cdn.test": ["93.184.216.34"], "internal.test": ["10.20.30.40"]})
        client = guarded_client(allow_private=False, resolver=resolver, network_backend=LoopbackNetwork())
        async with client:
            with pytest.raises(service.UserError) as refused:
                await service.register_media(
                    api.runtime.database,
                    api.runtime.settings,
                    org.organization_id,
                    secret_key=api.runtime.secret_key,
                    url=f"http://cdn.test:{server.port}/cat.png",
                    client=client,
                )
        assert server.requested == ["/cat.png"]
    assert (refused.value.code, refused.value.field) == ("URL_NOT_ALLOWED", ["input", "url"])
    await assert_nothing_stored(api)


async def test_a_body_without_length_is_cut_at_the_cap(private_api):
    org = await make_org_with_key(private_api.runtime)
    limits = MediaLimits({kind: 50_000 for kind in MediaKind})
    with scripted_server() as server:
        server.routes["/big.png"] = Reply(200, {"Content-Type": "image/png"}, samples.png() + b"\x00" * 200_000)
        with pytest.raises(service.UserError) as refused:
            await service.register_media(
                private_api.runtime.database,
                private_api.runtime.settings,
                org.organization_id,
                secret_key=private_api.runtime.secret_key,
                url=server.url("/big.png"),
                limits=limits,
            )
    assert refused.value.code == "MEDIA_TOO_LARGE"
    await assert_nothing_stored(private_api)


# -- listing, deleting, isolation, scopes ---------------------------------------------------------


async def test_media_are_listed_newest_first_a_page_at_a_time(api, org):
    ids = [(await upload(api, org.secret, samples.png(), filename=f"p{i}.png"))["mediaAsset"]["id"] for i in range(3)]
    first = (await api.graphql(LIST, {"first": 2}, key=org.secret))["data"]["media"]
    assert [node["filename"] for node in first["nodes"]] == ["p2.png", "p1.png"]
    assert first["pageInfo"]["hasNextPage"]
    rest = (await api.graphql(LIST, {"first": 2, "after": first["pageInfo"]["endCursor"]}, key=org.secret))["data"]["media"]
    assert [node["id"] for node in rest["nodes"]] == [ids[0]]
    assert not rest["pageInfo"]["hasNextPage"]


async def test_delete_removes_the_file_and_hides_the_asset(api, org):
    asset = (await upload(api, org.secret, samples.png()))["mediaAsset"]
    [stored] = stored_files(api.runtime.settings)
    deleted = (await api.graphql(DELETE, {"id": asset["id"]}, key=org.secret))["data"]["deleteMedia"]
    assert deleted == {"mediaAsset": {"id": asset["id"]}, "userErrors": []}
    assert not stored.exists()
    [row] = await media_rows(api)
    assert row.deleted_at is not None
    assert (await api.http.get(path_of(asset["url"]))).status_code == 404
    assert (await api.graphql(ONE, {"id": asset["id"]}, key=org.secret))["data"]["mediaAsset"] is None
    assert (await api.graphql(LIST, key=org.secret))["data"]["media"]["nodes"] == []
    again = (await api.graphql(DELETE, {"id": asset["id"]}, key=org.secret))["data"]["deleteMedia"]
    assert codes(again) == ["NOT_FOUND"]


@pytest.mark.parametrize(("bad_id", "code"), [("post_" + "a" * 24, "INVALID_ID"), ("garbage", "INVALID_ID"), ("med_" + "a" * 24, "NOT_FOUND")])
async def test_delete_with_a_bad_id_is_a_user_error(api, org, bad_id, code):
    payload = (await api.graphql(DELETE, {"id": bad_id}, key=org.secret))["data"]["deleteMedia"]
    assert payload["userErrors"][0]["code"] == code
    assert payload["userErrors"][0]["field"] == ["input", "id"]


@pytest.mark.parametrize("bad_id", ["post_" + "a" * 24, "x", ""])
async def test_media_asset_with_an_id_of_another_type_is_null_like_post(api, org, bad_id):
    body = await api.graphql(ONE, {"id": bad_id}, key=org.secret)
    assert body["data"]["mediaAsset"] is None and "errors" not in body


async def test_another_org_can_neither_see_fetch_nor_delete_media(api, org):
    asset = (await upload(api, org.secret, samples.png()))["mediaAsset"]
    intruder = await make_org_with_key(api.runtime, name="Intruder")
    assert (await api.graphql(ONE, {"id": asset["id"]}, key=intruder.secret))["data"]["mediaAsset"] is None
    assert (await api.graphql(NODE, {"id": asset["id"]}, key=intruder.secret))["data"]["node"] is None
    assert (await api.graphql(LIST, key=intruder.secret))["data"]["media"]["nodes"] == []
    refused = (await api.graphql(DELETE, {"id": asset["id"]}, key=intruder.secret))["data"]["deleteMedia"]
    assert codes(refused) == ["NOT_FOUND"]
    # Still there for its owner, file and all.
    own = (await api.graphql(NODE, {"id": asset["id"]}, key=org.secret))["data"]["node"]
    assert own == {"id": asset["id"], "sha256": asset["sha256"]}
    assert len(stored_files(api.runtime.settings)) == 1


async def test_scopes_are_checked(api):
    reader = await make_org_with_key(api.runtime, scopes=["media:read"])
    writer = await make_org_with_key(api.runtime, name="Writer", scopes=["media:write"])
    refused_upload = await api.http.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": UPLOAD, "variables": {"input": {"file": None}}}),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("a.png", samples.png(), "image/png")},
        headers={"Authorization": f"Bearer {reader.secret}"},
    )
    assert refused_upload.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for query, variables in [(DELETE, {"id": "med_" + "a" * 24}), (REGISTER, {"input": {"url": "https://example.com/a.png"}})]:
        body = await api.graphql(query, variables, key=reader.secret)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    uploaded = await upload(api, writer.secret, samples.png())
    assert uploaded["userErrors"] == []
    for query, variables in [(LIST, {}), (ONE, {"id": uploaded["mediaAsset"]["id"]}), (NODE, {"id": uploaded["mediaAsset"]["id"]})]:
        body = await api.graphql(query, variables, key=writer.secret)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await assert_nothing_stored_for(api, reader.organization_id)


async def assert_nothing_stored_for(api, organization_id):
    assert not (api.runtime.settings.resolved_data_dir / "media" / organization_id).exists()


async def test_idempotent_uploads_store_one_asset(api, org):
    first = await upload(api, org.secret, samples.png(), idempotencyKey="logo-v1")
    again = await upload(api, org.secret, samples.png(), idempotencyKey="logo-v1")
    assert first["userErrors"] == [] and again["userErrors"] == []
    assert again["mediaAsset"]["id"] == first["mediaAsset"]["id"]
    assert len(await media_rows(api)) == 1
    assert len(stored_files(api.runtime.settings)) == 1  # the replay's own copy was dropped
    other = await upload(api, org.secret, samples.png(width=9), idempotencyKey="logo-v1")
    assert codes(other) == ["IDEMPOTENCY_KEY_REUSED"]
    assert len(await media_rows(api)) == 1 and len(stored_files(api.runtime.settings)) == 1
