"""SQLite reads on the event loop's own thread, within a budget, when the connection's thread is idle.

aiosqlite runs each statement on the connection's own thread. While the event loop's thread is
busy (a server under load always is), every row of a result costs a hand-off of the GIL between
the two: CPython's sqlite3 lets the GIL go around each step of a statement and must take it back
for the row. A page of posts read 64 rows that way; its reads cost 1.9 ms of CPU on the
connections' threads and stalled the loop, where SQLite itself needed about 0.2 ms. Run on the
loop's thread, a short read takes no hand-off, no trip and no wake-up (``bench/README.md``: the
page's throughput rose by half).

A read runs here only when it cannot hold up the loop and cannot interleave with the thread:

- it is a SELECT, its connection's thread has nothing queued or running
  (``ThreadWatch``), and no statement waits to travel ahead of it but a deferred ``BEGIN``
  (which takes no lock);
- it waits for no lock: the busy timeout is 0 while it runs, and a read that meets a lock
  (SQLITE_BUSY) goes to the thread, which waits as every statement there does;
- it stays within ``STEP_BUDGET`` steps of SQLite's virtual machine: a progress handler stops a
  longer one (a count over a million rows, say), which then runs on the thread from the start.

A read stopped on either count changed nothing; its transaction's ``BEGIN``, sent here first, stays
sent. ``tests/test_sqlite_inline.py`` covers each case.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

# Steps of SQLite's virtual machine a read may take on the loop's thread before it is stopped and
# sent to the connection's thread: a page of posts with its targets and accounts takes a few
# thousand; 100,000 is about a millisecond on this machine, the most it may hold up the loop.
STEP_BUDGET = 100_000
_RESTORE_BUSY_TIMEOUT = "PRAGMA busy_timeout = {}"
_NO_BUSY_TIMEOUT = "PRAGMA busy_timeout = 0"

Result = tuple[Any, list[Any], int, int | None]


def _stop() -> int:
    return 1  # any non-zero answer interrupts the statement


def read_inline(
    connection: sqlite3.Connection, operation: str, parameters: Any, begin: str | None, busy_timeout_ms: int
) -> Result | None:
    """Run ``begin`` (if any) and the read ``operation`` here; None if the read was stopped (over its
    budget, or a lock in the way) and must run on the connection's thread, without ``begin``."""
    if begin is not None:
        connection.execute(begin)
    connection.execute(_NO_BUSY_TIMEOUT)
    connection.set_progress_handler(_stop, STEP_BUDGET)
    cursor = connection.cursor()
    try:
        cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    except sqlite3.OperationalError as error:
        if getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY):
            return None
        raise
    finally:
        cursor.close()
        connection.set_progress_handler(None, 0)
        connection.execute(_RESTORE_BUSY_TIMEOUT.format(busy_timeout_ms))


def is_read(operation: str) -> bool:
    return operation[:6].upper() == "SELECT"


class ThreadWatch:
    """Whether one aiosqlite connection's thread has a call queued or running.

    Every call aiosqlite makes goes through ``Connection._execute``; the watch wraps it on the
    instance and counts each call as it is queued (on the loop's thread) and once it has run (on
    the connection's thread), whether or not its caller still waits: a cancelled caller's
    statement still runs. Each count has one writer, so neither loses an update.
    """

    __slots__ = ("queued", "ran")

    def __init__(self, connection: Any) -> None:
        self.queued = 0
        self.ran = 0

        async def counted(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            @functools.wraps(function)  # named as what it runs, for whoever lists the calls
            def run() -> Any:
                try:
                    return function(*args, **kwargs)
                finally:
                    self.ran += 1

            self.queued += 1
            return await type(connection)._execute(connection, run)

        connection._execute = counted

    @property
    def idle(self) -> bool:
        return self.queued == self.ran
