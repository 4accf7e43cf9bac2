"""Running the real Bluesky PDS peer (``tests/peers/bluesky_pds``) for the duration of a test session.

``start.js`` starts a PLC directory and an ``@atproto/pds`` on 127.0.0.1 only. Its packages are
installed by ``.ci/run`` (``npm ci``); on a developer machine that has node but no
``node_modules`` yet, ``npm ci`` runs here first. Without node the peer tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import free_port, stop_process

PEER_DIR = Path(__file__).parent / "bluesky_pds"
START_TIMEOUT = 90.0


class PeerUnavailable(Exception):
    """Node is not installed: the peer cannot run on this machine."""


@dataclass(frozen=True)
class RunningPds:
    url: str  # http://127.0.0.1:<port>
    plc_url: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _install(npm: str) -> None:
    """``npm ci`` from the committed lockfile, once: reproducible, and never a different tree."""
    if (PEER_DIR / "node_modules" / "@atproto" / "pds").is_dir():
        return
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True, timeout=900)


def _wait_until_ready(process: subprocess.Popen, stdout_path: Path, stderr_path: Path) -> dict[str, str]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in stdout_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"pds"' in line:
                ready = json.loads(line)
                if httpx.get(ready["pds"] + "/xrpc/_health", timeout=5).status_code == 200:
                    return ready
        if process.poll() is not None:
            raise RuntimeError(f"the PDS peer exited with {process.returncode}:\n{stderr_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"the PDS peer did not start within {START_TIMEOUT:.0f} s:\n{stderr_path.read_text(errors='replace')[-3000:]}")


@contextmanager
def running_pds(workdir: Path) -> Iterator[RunningPds]:
    """A PLC directory and a PDS on free loopback ports, data under ``workdir``; stopped afterwards."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerUnavailable("node and npm are needed to run the Bluesky PDS peer")
    _install(npm)
    stdout_path, stderr_path, log_path = workdir / "peer.out", workdir / "peer.err", workdir / "pds.log"
    env = {**os.environ, "LOG_ENABLED": "true", "LOG_LEVEL": "warn", "LOG_DESTINATION": str(log_path)}
    plc_port = free_port()
    pds_port = free_port()
    while pds_port == plc_port:
        pds_port = free_port()
    command = [node, "start.js", str(plc_port), str(pds_port), str(workdir / "data")]
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(command, cwd=PEER_DIR, stdout=stdout, stderr=stderr, env=env)
    try:
        ready = _wait_until_ready(process, stdout_path, stderr_path)
        yield RunningPds(url=ready["pds"], plc_url=ready["plc"], log_path=log_path)
    finally:
        stop_process(process, timeout=15)
