"""How a long-running socialgate process uses CPython's garbage collector.

Why: a full collection walks every object the collector tracks, and the event loop waits for it.
A server holds two kinds: what start-up built — modules, the GraphQL schema, the ORM's mappers,
about 150,000 objects that live as long as the process — and what its clients hold, a few
hundred per open WebSocket. With a thousand subscribers a full collection took 300–400 ms, during
which no event went out: the one tail of the fan-out benchmark. ``gc.freeze`` exists for the
first kind: frozen objects are left out of every later collection, so each full collection only
walks what clients made since. Young collections are made rarer too: each promotes whatever
happens to be alive at that instant (a request halfway through), and promoted objects are what
brings the next full collection on.
"""

from __future__ import annotations

import gc

# CPython's defaults are (700, 10, 10): a young collection every 700 net allocations.
YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Collect start-up's garbage, freeze what survives, space young collections out.

    Call once, after the application is built and before it serves: not in tests that build
    many applications in one process, where frozen objects would never be collected.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
