from sqlalchemy import inspect, select

from gateway.orgs.organizations import create_organization
from gateway.runtime import Runtime
from gateway.storage.migrate import current_revision, head_revision
from gateway.storage.models import Base, Organization

EXPECTED_TABLES = {
    "organizations", "api_keys", "accounts", "connections", "posts", "targets", "attempts",
    "media_assets", "jobs", "job_events", "idempotency_records", "audit_entries",
}


async def _tables(runtime: Runtime) -> set[str]:
    async with runtime.database.engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_start_migrates_an_empty_database(settings):
    runtime = Runtime(settings)
    assert await _tables(runtime) == set()
    await runtime.start()
    try:
        tables = await _tables(runtime)
        assert EXPECTED_TABLES <= tables
        assert set(Base.metadata.tables) <= tables, "a model has no migration"
        assert await current_revision(runtime.database) == head_revision()
    finally:
        await runtime.stop()


async def test_second_start_keeps_data_and_revision(settings):
    first = Runtime(settings)
    await first.start()
    async with first.database.write() as session:
        organization = await create_organization(session, "Survivor")
    await first.stop()

    second = Runtime(settings)
    await second.start()
    try:
        assert await current_revision(second.database) == head_revision()
        async with second.database.read() as session:
            names = (await session.execute(select(Organization.name))).scalars().all()
        assert names == ["Survivor"]
        assert organization.id.startswith("org_")
    finally:
        await second.stop()


async def test_models_match_the_migrations(runtime):
    """Autogenerate finds nothing to add: the migrations describe exactly the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with runtime.database.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_sqlite_runs_in_wal_with_foreign_keys(runtime):
    async with runtime.database.engine.connect() as connection:
        assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
