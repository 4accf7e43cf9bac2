"""Files and directories that only the service's own user may read: 0600 files in 0700 directories.

The database holds hashed keys, sealed provider tokens and every post; media files are customers'
unpublished content. Each is created with its final mode in the ``open``/``mkdir`` call itself,
never widened first and narrowed later, so no window exists in which another local user could open
it — and a umask can only take permissions away from these modes, never add any.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("socialgate.files")

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
# SQLite's companions of a database file (WAL mode's, and the rollback journal of one not yet in
# WAL mode); they hold recent pages of the database.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private_directories(path: Path) -> None:
    """Create ``path`` and any missing parents as 0700 (``Path.mkdir(parents=True)`` would give the
    parents the umask's default). Directories that already exist are left as they are: an operator
    may share a data directory's parent on purpose."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:  # a concurrent start made it first
            pass


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for ``open()``: a file it creates is 0600 from the start."""
    return os.open(path, flags, FILE_MODE)


def restrict(path: Path, mode: int = FILE_MODE) -> None:
    """Narrow an existing file or directory an earlier version created too open; absent is fine."""
    try:
        os.chmod(path, mode)
    except FileNotFoundError:
        pass
    except PermissionError:  # another user's file that we may use but not change: say so, keep going
        log.warning("cannot narrow the permissions of %s to %o", path, mode)


def prepare_sqlite_file(database: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its ``-wal`` and ``-shm``
    files the database file's mode), and narrow the files of an existing installation."""
    make_private_directories(database.parent)
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        restrict(database)
    for suffix in SQLITE_COMPANIONS:
        restrict(database.with_name(database.name + suffix))
