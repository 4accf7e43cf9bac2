"""A writer of outcomes cancelled mid-way hands the rest to a task the scheduler holds, logs and awaits."""

import asyncio
import logging

from gateway.engine.scheduler import Outcome, Scheduler


async def _until(condition) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_takeover_of_a_cancelled_outcome_writer_is_held_and_its_failure_logged(runtime, monkeypatch, caplog):
    scheduler = Scheduler(runtime)
    calls = 0

    async def drain_outcomes() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # the first writer hangs until it is cancelled
        raise RuntimeError("the takeover failed")

    monkeypatch.setattr(scheduler, "_drain_outcomes", drain_outcomes)
    outcome = Outcome("success")
    writer = asyncio.create_task(scheduler.record_outcome("tgt_1", "att_1", outcome))
    await _until(lambda: calls == 1)
    queued = asyncio.create_task(scheduler.record_outcome("tgt_2", "att_2", outcome))  # waits behind the writer
    await _until(lambda: len(scheduler._outcome_queue) == 2)
    with caplog.at_level(logging.ERROR, logger="socialgate.scheduler"):
        writer.cancel()
        await _until(lambda: calls == 2)
        await scheduler.stop(grace=5)  # awaits the takeover: its failure is in the scheduler's own log by now
    logged = [r for r in caplog.records if r.name == "socialgate.scheduler" and r.exc_info]
    assert [str(r.exc_info[1]) for r in logged] == ["the takeover failed"]
    assert scheduler._recording is False  # the next outcome starts a writer again
    queued.cancel()
    await asyncio.gather(writer, queued, return_exceptions=True)
