"""A real Redis server for the tests, started from Debian's `redis-server` on 127.0.0.1.

`.ci/run` installs the `redis-server` package when it is missing. The server keeps nothing on
disk (no RDB snapshots, no AOF) and listens on loopback only, on a free port.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.servers import free_port, stop_process

START_TIMEOUT = 30.0


class RedisUnavailable(Exception):
    pass


@contextmanager
def running_redis() -> Iterator[str]:
    """Yield a redis:// URL to a fresh, empty server; stop it afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable("redis-server is not installed (Debian package redis-server)")
    root = Path(tempfile.mkdtemp(prefix="socialgate-redis-"))
    port = free_port()
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=log, stderr=log,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RedisUnavailable("redis-server did not start:\n" + (root / "server.log").read_text()[-2000:]) from None
                time.sleep(0.05)  # polling the server's readiness: it offers no other signal
        client.close()
        yield url
    finally:
        stop_process(server, timeout=20)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
