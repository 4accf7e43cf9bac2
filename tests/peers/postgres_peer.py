"""A real PostgreSQL server for the tests, started from Debian's binaries on 127.0.0.1.

`.ci/run` installs the `postgresql` package when it is missing. The server runs as the
`postgres` system user when the tests run as root (PostgreSQL refuses root), in a throwaway
data directory, with trust authentication on loopback only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port

START_TIMEOUT = 60.0


class PostgresUnavailable(Exception):
    pass


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise PostgresUnavailable(f"{name} is not installed (Debian package postgresql)")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root needs runuser to start PostgreSQL as the postgres user")
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def running_postgres() -> Iterator[str]:
    """Yield an asyncpg SQLAlchemy URL to a fresh, empty database; stop the server afterwards."""
    initdb, postgres, createdb = _binary("initdb"), _binary("postgres"), _binary("createdb")
    root = Path(tempfile.mkdtemp(prefix="socialgate-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_server_user([initdb, "-D", str(data), "-U", "socialgate", "-A", "trust", "--no-sync"]),
        check=True, capture_output=True, timeout=120,
    )
    port = free_port()
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        _as_server_user([postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(sockets), "-c", "fsync=off"]),
        stdout=log, stderr=log,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run(
            _as_server_user([createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "socialgate", "socialgate"]),
            capture_output=True, timeout=30,
        ).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise PostgresUnavailable("PostgreSQL did not start:\n" + (root / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        yield f"postgresql+asyncpg://socialgate@127.0.0.1:{port}/socialgate"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
