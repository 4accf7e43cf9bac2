"""The server's garbage-collector policy: start-up frozen, young collections spaced, cycles still collected."""

import gc
import weakref

from gateway.outbound.gc_policy import YOUNG_THRESHOLD, settle_after_startup


class Node:
    pass


def test_settling_freezes_what_exists_and_later_cycles_are_still_collected():
    threshold = gc.get_threshold()
    try:
        survivor = Node()
        settle_after_startup()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, threshold[1], threshold[2])
        assert gc.is_tracked(survivor) and survivor not in gc.get_objects()  # frozen: out of every collection

        cycle = Node()
        cycle.itself = cycle
        collected = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert collected() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
