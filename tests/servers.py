"""Starting the real `socialgate serve` as a subprocess on a free loopback port, for e2e tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# A retried call waits a tenth of a second, not the default two: the retry is the point, not its wait.
FAST_RETRIES = {"SOCIALGATE_RETRY_BASE_SECONDS": "0.1"}


def free_port() -> int:
    """A port free a moment ago. Another process may take it before ours binds it: a server
    started on it must be retried on a new one when its bind fails (``serve`` does)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lost_the_port(stderr: str) -> bool:
    """Whether a server that exited at startup did so because its port was taken meanwhile."""
    return "address already in use" in stderr.lower()


@dataclass
class RunningServer:
    base_url: str
    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()


class PortTaken(Exception):
    """The port chosen was bound by someone else before the server bound it."""


# `socialgate serve` refuses port 0, so the port is chosen here; losing it is retried this often.
PORT_ATTEMPTS = 5


@contextmanager
def serve(workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0) -> Iterator[RunningServer]:
    """Run `python -m gateway serve ARGS` in workdir until the block ends; wait for /healthz first."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
    full_env.update(env or {})
    for _attempt in range(PORT_ATTEMPTS):
        server = _start(workdir, free_port(), args, full_env)
        try:
            _wait_until_healthy(server, timeout)
        except PortTaken:
            stop_process(server.process)
            continue
        except BaseException:
            stop_process(server.process)
            raise
        break
    else:
        raise RuntimeError(f"every one of {PORT_ATTEMPTS} free ports was taken before the server bound it")
    try:
        yield server
    finally:
        stop_process(server.process)


def _start(workdir: Path, port: int, args: tuple[str, ...], env: dict[str, str]) -> RunningServer:
    stdout_path, stderr_path = workdir / "serve.out", workdir / "serve.err"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=workdir,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    return RunningServer(f"http://127.0.0.1:{port}", process, stdout_path, stderr_path)


def _wait_until_healthy(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            if lost_the_port(server.stderr()):
                raise PortTaken(server.base_url)
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.stderr()}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not answer within {timeout}s:\n{server.stderr()}")
        time.sleep(0.1)  # paces the polling of /healthz; the wait ends on its answer


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, so the server shuts down cleanly; SIGKILL if it has not within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
