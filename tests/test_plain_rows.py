"""Rows of the lists read on every request as named tuples (gateway.core.plain_rows): the same
names, indexes and values as SQLAlchemy's rows, without its per-attribute key lookup."""

from sqlalchemy import text

from gateway.core import plain_rows
from gateway.storage import Database


async def test_plain_rows_answer_as_sqlalchemys_rows(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/rows.db")
    try:
        async with database.read() as session:
            query = text("SELECT 1 AS id, 'a' AS name, NULL AS metadata_ UNION ALL SELECT 2, 'b', 'm'")
            theirs = (await session.execute(query)).all()
            ours = plain_rows(await session.execute(query))
            again = plain_rows(await session.execute(query))
        assert ours == [tuple(row) for row in theirs]
        assert [(row.id, row.name, row.metadata_) for row in ours] == [(row.id, row.name, row.metadata_) for row in theirs]
        assert ours[1][1] == "b" and ours[1]._fields == ("id", "name", "metadata_")
        assert type(again[0]) is type(ours[0])  # one class per set of columns, made once
    finally:
        await database.dispose()
