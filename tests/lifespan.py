"""The app's lifespan as tests run it.

asgi-lifespan gives startup and shutdown 5 seconds each, which is a timing assertion in disguise:
late in a run of 3,400 tests on a 2-core machine, a startup that takes a fraction of a second
alone has taken longer behind the test process's garbage collector. A test checks that the app
starts and stops, not how fast; a hang still fails, after a minute.
"""

from __future__ import annotations

from typing import Any

from asgi_lifespan import LifespanManager

LIFESPAN_SECONDS = 60


def lifespan_of(app: Any) -> LifespanManager:
    return LifespanManager(app, startup_timeout=LIFESPAN_SECONDS, shutdown_timeout=LIFESPAN_SECONDS)
