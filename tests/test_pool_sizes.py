"""Connection pools sized to a server's concurrency (gateway.storage.database): under sixteen
concurrent requests, SQLAlchemy's default 5 + 10 opened a PostgreSQL connection for one request
in twelve (166 sessions in 2,000 requests), a handshake and a backend process each."""

from gateway.storage.database import POSTGRES_POOL_OVERFLOW, POSTGRES_POOL_SIZE, SQLITE_READ_POOL_SIZE, Database


async def test_postgresql_keeps_a_connection_per_concurrent_request_and_caps_each_process():
    database = Database("postgresql+asyncpg://socialgate:secret@127.0.0.1:1/socialgate")  # nothing connects yet
    try:
        pool = database.engine.sync_engine.pool
        assert pool.size() == POSTGRES_POOL_SIZE >= 16  # the benchmark's and a busy server's concurrency
        assert pool._max_overflow == POSTGRES_POOL_OVERFLOW  # type: ignore[attr-defined]
        assert POSTGRES_POOL_SIZE + POSTGRES_POOL_OVERFLOW <= 20  # docs/deploy.md: processes × 20 ≤ max_connections
        assert database.write_engine is database.engine
    finally:
        await database.dispose()


async def test_sqlite_reads_keep_their_connections(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/pool.db")
    try:
        assert database.engine.sync_engine.pool.size() == SQLITE_READ_POOL_SIZE
    finally:
        await database.dispose()
