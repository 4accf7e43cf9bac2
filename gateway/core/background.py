"""Tasks started for later: referenced until done, their failures logged, bounded, awaited at stop.

Why: ``asyncio`` keeps only a weak reference to a task, so a task nobody holds can be collected
half-way; an exception nobody retrieves surfaces as "Task exception was never retrieved" at
garbage collection, long after and without context; a producer faster than its tasks grows
memory without bound; and a process that stops without waiting for them drops their work.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any


class BackgroundTasks:
    """A set of tasks of one kind (``name``), at most ``limit`` running at once when a limit is set."""

    def __init__(self, name: str, log: logging.Logger, *, limit: int | None = None) -> None:
        self.name = name
        self.log = log
        self.limit = limit
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, awaitable: Awaitable[Any], label: str) -> bool:
        """Run ``awaitable`` in a task of its own; False, and it is not run, when the limit is reached."""
        if self.limit is not None and len(self._tasks) >= self.limit:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited on purpose: no "coroutine was never awaited" warning
            self.log.error("%s: %d still running, %s dropped", self.name, len(self._tasks), label)
            return False
        task = asyncio.get_running_loop().create_task(self._run(awaitable, label), name=f"{self.name}: {label}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, awaitable: Awaitable[Any], label: str) -> None:
        try:
            await awaitable
        except Exception:
            self.log.exception("%s: %s failed", self.name, label)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the running tasks, then cancel those still running."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        if pending:
            self.log.warning("%s: %d still running at stop, cancelled", self.name, len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class Periodic:
    """One round of work every ``interval`` seconds, in a task of its own, until stopped.

    Why: the watches beside the API (the key watch, the stored-event relay, the stalled-worker
    watch) must outlive a failed round, a database hiccup say, so each failure is logged and the
    next round tries again instead of the task ending silently.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        round_: Callable[[], Awaitable[Any]],
        log: logging.Logger,
        failure: str,
        *,
        level: int = logging.ERROR,
    ) -> None:
        self.name = name
        self.interval = interval
        self._round = round_
        self._log = log
        self._failure = failure
        self._level = level
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._round()
            except Exception:
                self._log.log(self._level, self._failure, exc_info=True)


class WakeableLoop:
    """The task of a loop that waits until it is woken (``woken``) or its poll interval passes.

    Why one place: cancelling such a loop is not enough to stop it on Python 3.11. A cancel that
    lands as the loop's ``asyncio.wait_for`` is being woken is swallowed (``wait_for`` returns),
    the loop runs on, and ``stop`` waits for it forever. So ``stop`` also sets ``stopping``,
    which the loop checks each time round.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stopping = False
        self.woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, run: Callable[[], Awaitable[None]]) -> None:
        self.stopping = False
        self._task = asyncio.create_task(run(), name=self.name)  # type: ignore[arg-type]

    def wake(self) -> None:
        self.woken.set()

    async def stop(self) -> None:
        self.stopping = True
        self.woken.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
