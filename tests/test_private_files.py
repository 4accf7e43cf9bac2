"""Issue 11.9: what socialgate writes to disk is readable by its own user only, and the database
keeps no media URL token in a form that opens a file."""

import os
import stat
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, select

from gateway.app import create_app
from gateway.content.media_tokens import access_token, token_hash
from gateway.core.clock import utcnow
from gateway.runtime import Runtime
from gateway.settings import SECRET_KEY_FILENAME, load_settings, resolve_secret_key
from gateway.storage import Database
from gateway.storage.migrate import current_revision, upgrade
from gateway.storage.models import MediaAsset
from tests import media_samples as samples
from tests.conftest import make_org_with_key
from tests.lifespan import lifespan_of
from tests.test_media import path_of, upload


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def permissive_umask():
    """The loosest umask a user could run with: the modes must not come from it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def fresh_settings(tmp_path):
    """An installation whose data directory does not exist yet, two levels deep."""
    data = tmp_path / "new" / "data"
    return load_settings(database_url=f"sqlite+aiosqlite:///{data}/socialgate.db", data_dir=str(data))


async def test_the_database_its_wal_and_the_data_directory_are_private(fresh_settings):
    data = fresh_settings.resolved_data_dir
    with permissive_umask():
        runtime = Runtime(fresh_settings)
        await runtime.start()
        try:
            await make_org_with_key(runtime)  # a write, so the -wal and -shm files exist
            database = data / "socialgate.db"
            companions = [database.with_name("socialgate.db-wal"), database.with_name("socialgate.db-shm")]
            assert all(path.exists() for path in companions)
            assert {path.name: mode(path) for path in [database, *companions]} == {path.name: 0o600 for path in [database, *companions]}
            assert mode(data) == 0o700 and mode(data.parent) == 0o700
            assert mode(data / SECRET_KEY_FILENAME) == 0o600
        finally:
            await runtime.stop()


async def test_files_an_earlier_version_left_open_are_narrowed_on_start(settings):
    runtime = Runtime(settings)
    await runtime.start()
    await make_org_with_key(runtime)
    data = settings.resolved_data_dir
    opened = [data / "socialgate.db", data / "socialgate.db-wal", data / "socialgate.db-shm"]
    for path in opened:
        path.chmod(0o644)
    (data / "media").mkdir(mode=0o755)
    (data / "media").chmod(0o755)
    await runtime.stop()
    again = Runtime(settings)
    await again.start()
    try:
        assert {path.name: mode(path) for path in opened if path.exists()} == {path.name: 0o600 for path in opened if path.exists()}
        assert mode(data / "socialgate.db") == 0o600
        assert mode(data / "media") == 0o700
    finally:
        await again.stop()


async def test_media_files_and_their_directories_are_private(api, org):
    with permissive_umask():
        asset = (await upload(api, org.secret, samples.png()))["mediaAsset"]
    media_root = api.runtime.settings.resolved_data_dir / "media"
    stored = media_root / org.organization_id / asset["id"]
    assert (mode(media_root), mode(stored.parent), mode(stored)) == (0o700, 0o700, 0o600)


async def test_media_url_tokens_are_stored_only_as_hashes(api, org):
    asset = (await upload(api, org.secret, samples.png()))["mediaAsset"]
    token = path_of(asset["url"]).split("/")[3]
    async with api.runtime.database.read() as session:
        row = await session.get(MediaAsset, asset["id"])
        columns = [getattr(row, column.key) for column in inspect(MediaAsset).column_attrs]
    assert not any(token in str(value) for value in columns)
    assert row.access_token_hash == token_hash(token)
    assert (await api.http.get(path_of(asset["url"]))).status_code == 200
    # The hash itself in the URL's place opens nothing.
    hashed_url = path_of(asset["url"]).replace(token, row.access_token_hash)
    assert (await api.http.get(hashed_url)).status_code == 404


def _legacy_tables():
    """The two tables as revision 0003 has them, typed so that any dialect gets proper values."""
    import sqlalchemy as sa

    from gateway.storage.types import UTCDateTime

    def stamps():
        return sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime())

    organizations = sa.table(
        "organizations", sa.column("id"), sa.column("name"), sa.column("status"), sa.column("metadata", sa.JSON()),
        sa.column("settings", sa.JSON()), sa.column("kill_switch", sa.Boolean()), *stamps(),
    )
    media = sa.table(
        "media_assets", *(sa.column(name) for name in ("id", "organization_id", "kind", "mime_type", "filename", "size_bytes",
                                                     "sha256", "alt_text", "storage_path", "access_token")), *stamps(),
    )
    return organizations, media


async def _legacy_media_row(database: Database, settings, token: str) -> str:
    """A database at revision 0003 holding one media asset whose token is stored in plaintext."""
    await upgrade(database, to="0003")
    organizations, media = _legacy_tables()
    organization_id, media_id, now = "org_legacy000000000000000001", "med_legacy000000000000000001", utcnow()
    async with database.write_engine.begin() as connection:
        await connection.execute(organizations.insert().values(
            id=organization_id, name="Old", status="active", metadata={}, settings={}, kill_switch=False, created_at=now, updated_at=now,
        ))
        await connection.execute(media.insert().values(
            id=media_id, organization_id=organization_id, kind="image", mime_type="image/png", filename="a.png",
            size_bytes=len(samples.png()), sha256="0" * 64, alt_text="", storage_path=f"media/{organization_id}/{media_id}",
            access_token=token, created_at=now, updated_at=now,
        ))
    stored = settings.resolved_data_dir / "media" / organization_id / media_id
    stored.parent.mkdir(parents=True)
    stored.write_bytes(samples.png())
    return media_id


async def assert_the_migration_hashes_existing_tokens(settings) -> None:
    """Revision 0004 on a database with a plaintext token; shared with the PostgreSQL peer test."""
    legacy = "plaintext-token-of-an-older-version-000000000"
    database = Database(settings.database_url)
    try:
        media_id = await _legacy_media_row(database, settings, legacy)
        with pytest.raises(RuntimeError, match="secret key"):
            await upgrade(database)  # rows to convert and no key: nothing changes
        assert await current_revision(database) == "0003"
        key = resolve_secret_key(settings)
        await upgrade(database, key)
        async with database.engine.connect() as connection:
            columns = await connection.run_sync(lambda c: {column["name"] for column in inspect(c).get_columns("media_assets")})
            row = (await connection.execute(select(MediaAsset.access_token_hash))).one()
        assert "access_token" not in columns
        assert row.access_token_hash == token_hash(access_token(key, media_id))
    finally:
        await database.dispose()
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as http:
            assert (await http.get(f"/media/{media_id}/{legacy}/a.png")).status_code == 404
            served = await http.get(f"/media/{media_id}/{access_token(key, media_id)}/a.png")
            assert served.status_code == 200 and served.content == samples.png()


async def test_the_migration_hashes_existing_tokens(settings):
    await assert_the_migration_hashes_existing_tokens(settings)
