"""Waiting for a condition instead of sleeping and hoping it came true."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, *, every: float = 0.01) -> None:
    """Return as soon as ``condition()`` holds (it may be a coroutine function); fail after ``timeout``.

    The short sleep between looks only paces the polling: the wait ends on the condition, and
    ``timeout`` is a bound for a broken test, never a measurement.
    """
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(every)
