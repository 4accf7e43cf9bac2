"""SQLite statements on the event loop's own thread, when the connection's thread is idle and
nothing can make them wait.

aiosqlite runs each statement on the connection's own thread. While the event loop's thread is
busy (a server under load always is), every trip there costs a hand-off of the GIL each way, and
every row of a result another: CPython's sqlite3 lets the GIL go around each step of a statement
and must take it back for the row. A page of posts read 64 rows that way; its reads cost 1.9 ms
of CPU on the connections' threads and stalled the loop, where SQLite itself needed about 0.2 ms.
A post created and published cost 1.3 ms on the write connection's thread for four trips. Run on
the loop's thread, a short statement takes no hand-off, no trip and no wake-up (``bench/README.md``).

What runs here, and only when the connection's thread has nothing queued or running
(``ThreadWatch``), so that nothing here can overtake or interleave with a call there:

- a read (a SELECT), with what waits to travel ahead of it: its transaction's ``BEGIN``, and
  deferred writes (``storage.DEFERRED``) once the transaction holds the write lock;
- a COMMIT, with the deferred writes that travel with it.

Nothing here waits: from its first statement here on, the connection rests at busy timeout 0,
and each call on its thread runs with the timeout it was opened with, set around the call
(``ThreadWatch``), so whatever runs there waits as it always did. Setting the timeout to 0 and
back around every statement here cost two PRAGMAs each, 2.6% of a post's CPU. A ``BEGIN
IMMEDIATE`` that meets another writer's lock (SQLITE_BUSY) is not sent; it goes to the thread,
which waits for the lock as it always did, with everything after it.

A read stays within ``STEP_BUDGET`` steps of SQLite's virtual machine: a progress handler stops a
longer one (a count over a million rows, say), which then runs on the thread from the start; a
read stopped either way changed nothing, and what went ahead of it stays sent. Only a read that
is long itself is stopped (``_Budget``): a short one run thousands of times must never be, since
sqlite3 then prepares it anew on every later run. Writes are never stopped midway (SQLite would
roll back the whole transaction), so only a few rows go here (``INLINE_WRITE_ROWS``), and only in
WAL mode, where a writer holding the write lock and a COMMIT never wait for readers.

A COMMIT in WAL mode may run a checkpoint, which copies pages to the database file and syncs it:
too slow for the loop's thread. A connection that commits here turns SQLite's automatic
checkpoint off and checkpoints on its thread every ``CHECKPOINT_EVERY_COMMITS`` commits instead,
about as often as SQLite would (``sqlite_driver.OneTripConnection.commit``).
``tests/test_sqlite_inline.py`` covers each case.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

# Steps of SQLite's virtual machine a read may take on the loop's thread before it is stopped and
# sent to the connection's thread (``_Budget`` stops it after between half of them and all): a page
# of posts with its targets and accounts takes a few thousand; 100,000 is about a millisecond on
# this machine, the most it may hold up the loop.
STEP_BUDGET = 100_000
# Rows of deferred writes that may go out on the loop's thread: a post with its targets, its job,
# events and audit entry is about ten; a bulk change of hundreds goes to the thread.
INLINE_WRITE_ROWS = 100
# Commits between two checkpoints of a connection that commits on the loop's thread. createPost's
# and publishPost's commits write about 26 pages each (the rows and their indexes, measured at
# 10,000 posts); SQLite's own automatic checkpoint runs every 1,000 pages, about as often.
CHECKPOINT_EVERY_COMMITS = 32

_BUSY_TIMEOUT = "PRAGMA busy_timeout = {}"
_NO_BUSY_TIMEOUT = "PRAGMA busy_timeout = 0"
_WAITED = (sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY)

Result = tuple[Any, list[Any], int, int | None]
Ahead = tuple[str | None, list[tuple[str, Any, bool]]]  # a deferred BEGIN and deferred statements, in order
NOTHING_AHEAD: Ahead = (None, [])


def send_ahead(connection: sqlite3.Connection, ahead: Ahead) -> None:
    """Send a transaction's deferred ``BEGIN`` and statements, in order (on either thread)."""
    begin, deferred = ahead
    if begin is not None:
        connection.execute(begin)
    for operation, parameters, many in deferred:
        if many:
            connection.executemany(operation, parameters)
        else:
            connection.execute(operation, () if parameters is None else parameters)


def rows_of(deferred: list[tuple[str, Any, bool]]) -> int:
    return sum(len(parameters) if many else 1 for _operation, parameters, many in deferred)


def _stopped(error: sqlite3.OperationalError) -> bool:
    """The statement met a lock, or its budget: it changed nothing and may run again on the thread."""
    return getattr(error, "sqlite_errorcode", None) in _WAITED


class _Budget:
    """A read's progress handler: it stops the read at its second call, after between half the
    budget and the whole budget of the read's own steps.

    SQLite calls the handler whenever the statement's steps, counted since it was prepared and
    not since this run began, cross a multiple of the period: a short read run from sqlite3's
    statement cache crosses one every few thousand runs, and stopping it there does worse than
    send one read to the thread. Python 3.11's sqlite3 resets the interrupted statement, gets the
    interrupt back as the reset's answer, and leaves the statement marked in use: every later run
    of the same SQL then prepares it anew (the key lookup's join: 7 µs became 48 µs, measured).
    """

    __slots__ = ("calls",)
    PERIOD_FRACTION = 2  # the handler's period: half the budget, so a stopped read ran at most all of it

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return 1 if self.calls > 1 else 0  # any non-zero answer interrupts the statement


def _send_ahead_unless_locked(connection: sqlite3.Connection, ahead: Ahead) -> Ahead:
    """``ahead`` sent here; or, when its BEGIN meets another writer's lock, nothing sent and all of it
    still owed (a BEGIN that fails leaves no transaction)."""
    begin, deferred = ahead
    if begin is not None:
        try:
            connection.execute(begin)
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                return ahead
            raise
    send_ahead(connection, (None, deferred))
    return NOTHING_AHEAD


def read_inline(connection: sqlite3.Connection, operation: str, parameters: Any, ahead: Ahead) -> tuple[Result | None, Ahead]:
    """(the read's result, NOTHING_AHEAD) when ``ahead`` and the read ``operation`` ran here; (None,
    what is still owed) when the read was stopped (over its budget, or a lock in the way) and must
    run on the connection's thread, after whatever of ``ahead`` did not go out here. The
    connection rests at busy timeout 0 (``ThreadWatch.rest_without_waiting``)."""
    owed = _send_ahead_unless_locked(connection, ahead)
    if owed is not NOTHING_AHEAD:
        return None, owed
    connection.set_progress_handler(_Budget(), max(1, STEP_BUDGET // _Budget.PERIOD_FRACTION))
    cursor = connection.cursor()
    try:
        cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return (description, rows, cursor.rowcount, cursor.lastrowid), NOTHING_AHEAD
    except sqlite3.OperationalError as error:
        if _stopped(error):
            return None, NOTHING_AHEAD
        raise
    finally:
        cursor.close()
        connection.set_progress_handler(None, 0)


def commit_inline(connection: sqlite3.Connection, ahead: Ahead) -> tuple[bool, Ahead]:
    """(True, NOTHING_AHEAD) when ``ahead`` and the COMMIT ran here; (False, what is still owed)
    when a lock stood in the way, and the thread must send that, then COMMIT."""
    owed = _send_ahead_unless_locked(connection, ahead)
    if owed is not NOTHING_AHEAD:
        return False, owed
    try:
        connection.commit()
    except sqlite3.OperationalError as error:
        if _stopped(error):  # the transaction is still open: the thread commits it
            return False, NOTHING_AHEAD
        raise
    return True, NOTHING_AHEAD


def stop_automatic_checkpoints(connection: sqlite3.Connection) -> None:
    """The connection's commits no longer checkpoint; its owner does, on the connection's thread."""
    connection.execute("PRAGMA wal_autocheckpoint = 0")


def checkpoint(connection: sqlite3.Connection) -> None:
    """On the connection's thread: copy what the WAL holds to the database, waiting for no one."""
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _set_busy_timeout(raw: sqlite3.Connection, pragma: str) -> None:
    try:
        raw.execute(pragma)
    except sqlite3.ProgrammingError:  # closed: by the call itself (aiosqlite's close), or before it
        pass


def is_read(operation: str) -> bool:
    return operation[:6].upper() == "SELECT"


class ThreadWatch:
    """Whether one aiosqlite connection's thread has a call queued or running, and the busy
    timeout its calls run with.

    Every call aiosqlite makes goes through ``Connection._execute``; the watch wraps it on the
    instance and counts each call as it is queued (on the loop's thread) and once it has run (on
    the connection's thread), whether or not its caller still waits: a cancelled caller's
    statement still runs. Each count has one writer, so neither loses an update.

    Once the connection rests at busy timeout 0 (``rest_without_waiting``), each call sets the
    timeout the connection was opened with around itself, on the thread.
    """

    __slots__ = ("queued", "ran", "busy_timeout_ms")

    def __init__(self, connection: Any) -> None:
        self.queued = 0
        self.ran = 0
        self.busy_timeout_ms: int | None = None  # set once, while the thread is idle; read there after

        async def counted(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            @functools.wraps(function)  # named as what it runs, for whoever lists the calls
            def run() -> Any:
                raw = connection._conn if self.busy_timeout_ms else None  # None while connecting
                try:
                    if raw is not None:
                        _set_busy_timeout(raw, _BUSY_TIMEOUT.format(self.busy_timeout_ms))
                    return function(*args, **kwargs)
                finally:
                    if raw is not None:
                        _set_busy_timeout(raw, _NO_BUSY_TIMEOUT)
                    self.ran += 1

            self.queued += 1
            return await type(connection)._execute(connection, run)

        connection._execute = counted

    def rest_without_waiting(self, raw: sqlite3.Connection) -> None:
        """From now on the connection rests at busy timeout 0, for statements sent from the loop's
        thread; its thread's calls keep the timeout it was opened with. Called with the thread idle."""
        if self.busy_timeout_ms is None:
            self.busy_timeout_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
            raw.execute(_NO_BUSY_TIMEOUT)

    @property
    def idle(self) -> bool:
        return self.queued == self.ran
