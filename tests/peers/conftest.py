"""Fixtures shared by the peer tests."""

import os

import pytest

from tests.peers.redis_peer import RedisUnavailable, running_redis


@pytest.fixture(scope="session")
def redis_url():
    """One real Redis server for the whole session; each test uses keys of its own (ids are random)."""
    try:
        with running_redis() as url:
            yield url
    except RedisUnavailable as reason:
        if os.environ.get("CI"):
            raise  # CI installs redis-server: its absence there is a failure, not a skip
        pytest.skip(str(reason))
