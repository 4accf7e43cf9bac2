"""The sessions ``Database`` hands out: a Core statement goes to the session's connection directly.

For a statement with no ORM entity in it (a table's columns, ``text()``), ``Session.execute``
does three things that matter: it autoflushes, finds the connection of the session's transaction
and runs the statement there. On the way it coerces the statement again, merges execution
options, looks for ORM execute hooks and resolves the bind anew, which cost 10-40 µs a statement
(measured; about what SQLite needs to run one). The write path runs a dozen Core statements per
post created and published (issue 21), and a page of posts three.

``CoreSession.execute`` does the three things and nothing else for such a statement. Everything
else takes ``Session.execute``'s own path: a statement with an ORM entity (``select(Post)``,
``update(Target)``, which the ORM loads or synchronizes), a call with bind arguments or ORM
parameters, and a session with execution options or ``do_orm_execute`` hooks of its own (this
project sets none). ``tests/test_core_session.py`` holds it to the same answers as the ORM's path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import util
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util.concurrency import greenlet_spawn

# AsyncSession.execute's own options: the rows are fetched inside the greenlet, as it does.
_BUFFERED = util.immutabledict({"prebuffer_rows": True})


def is_core(statement: Any) -> bool:
    """No ORM entity in the statement: the ORM would neither load nor synchronize anything for it."""
    return statement._propagate_attrs.get("compile_state_plugin") != "orm"


def _streams(statement: Any, execution_options: Any) -> bool:
    return bool(statement.get_execution_options().get("stream_results") or (execution_options or {}).get("stream_results"))


class CoreSession(AsyncSession):
    """An ``AsyncSession`` whose Core statements skip the ORM's dispatch (see the module)."""

    async def execute(  # type: ignore[override]
        self,
        statement: Any,
        params: Any = None,
        *,
        execution_options: Any = util.EMPTY_DICT,
        bind_arguments: Any = None,
        **kw: Any,
    ) -> Result[Any]:
        sync = self.sync_session
        if (
            bind_arguments or kw or sync.execution_options or sync.dispatch.do_orm_execute or not is_core(statement)
            or _streams(statement, execution_options)  # refused with AsyncSession's own error
        ):
            return await super().execute(statement, params, execution_options=execution_options, bind_arguments=bind_arguments, **kw)
        options = util.immutabledict(execution_options).union(_BUFFERED) if execution_options else _BUFFERED

        def run() -> Result[Any]:
            if sync.autoflush:  # as Session.execute does for every Core statement (pending objects first)
                sync.flush()
            return sync.connection().execute(statement, params, execution_options=options)

        return await greenlet_spawn(run)
