"""Checking that a secret is nowhere on disk, over files that were actually found."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def assert_not_on_disk(secret: bytes, paths: Iterable[Path]) -> list[Path]:
    """Assert no file among ``paths`` holds ``secret``; return the files scanned.

    A glob that matches nothing (a renamed database, a moved data directory) would make the
    check pass without reading a byte, so finding no file at all fails too.
    """
    scanned = [path for path in paths if path.is_file()]
    assert scanned, "no files to scan: the check would prove nothing"
    for path in scanned:
        assert secret not in path.read_bytes(), path
    return scanned
