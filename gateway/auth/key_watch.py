"""Open subscriptions re-check the key they were opened with.

Why: a WebSocket (or an SSE stream) is authenticated once, when it opens, and may stay open for
days. A key revoked, expired at the end of its rotation grace, switched off by a kill switch
(its own, its organization's or the global one), or whose organization was suspended must stop
receiving events too, not only be refused on its next request. One task per process re-checks
every watched key each ``interval`` in one query per batch of keys, whatever the number of open
sockets, and tells each watch whose key no longer stands, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy import Row, select

from gateway.auth.keys import KEY_REVOKED, Principal, Refusal, organization_refusal, refusal_of, select_keys_with_organizations
from gateway.core import Periodic, clock
from gateway.storage import ApiKey, Database, Organization

log = logging.getLogger("socialgate.key_watch")

CHECK_BATCH = 500  # keys per query: well under every backend's limit on bound parameters
GONE = Refusal(KEY_REVOKED, "The API key no longer exists.")


@dataclass(eq=False)
class Watch:
    """One open subscription's (or connection's) claim on a key; ``on_refused`` runs once if it falls."""

    watcher: KeyWatch
    principal: Principal
    on_refused: Callable[[Refusal], None]
    refusal: Refusal | None = field(default=None)

    def release(self) -> None:
        self.watcher._forget(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()


class KeyWatch:
    def __init__(self, database: Database, *, interval: float, global_kill_switch: Callable[[], bool]) -> None:
        self.database = database
        self.interval = interval
        self.global_kill_switch = global_kill_switch
        self._watches: dict[Watch, None] = {}  # insertion-ordered set
        # a failed read must not end the watch; the next round checks again
        self._rounds = Periodic("key watch", interval, self.check_once, log, "re-checking the keys of open subscriptions failed")

    def __len__(self) -> int:
        return len(self._watches)

    def watch(self, principal: Principal, on_refused: Callable[[Refusal], None]) -> Watch:
        watch = Watch(self, principal, on_refused)
        self._watches[watch] = None
        return watch

    def _forget(self, watch: Watch) -> None:
        self._watches.pop(watch, None)

    async def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def check_once(self) -> int:
        """Re-check every watched key; returns how many watches were refused (and forgotten)."""
        watches = list(self._watches)
        if not watches:
            return 0
        refusals = await self._refusals({w.principal for w in watches})
        refused = 0
        for watch in watches:
            refusal = refusals.get(watch.principal)
            if refusal is None or watch not in self._watches:
                continue
            self._forget(watch)
            watch.refusal = refusal
            refused += 1
            try:
                watch.on_refused(refusal)
            except Exception:  # one subscriber's teardown must not spare the others
                log.exception("ending a subscription whose key was refused failed")
        return refused

    async def _refusals(self, principals: set[Principal]) -> dict[Principal, Refusal]:
        key_ids = sorted({p.api_key_id for p in principals})
        # A parent's key acting in a child: the child's own kill switch and status count too.
        acting_in = sorted({p.organization_id for p in principals if p.acting_from_organization_id})
        keys: dict[str, Row] = {}
        children: dict[str, Organization] = {}
        async with self.database.read() as session:
            for chunk in _chunks(key_ids):
                rows = await session.execute(select_keys_with_organizations().where(ApiKey.id.in_(chunk)))
                keys.update((row.ApiKey.id, row) for row in rows)
            for chunk in _chunks(acting_in):
                children.update((o.id, o) for o in (await session.execute(select(Organization).where(Organization.id.in_(chunk)))).scalars())
        now = clock.utcnow()
        kill_switch = self.global_kill_switch()
        refusals: dict[Principal, Refusal] = {}
        for principal in principals:
            found = keys.get(principal.api_key_id)
            refusal = (
                GONE
                if found is None
                else refusal_of(
                    found.ApiKey, found.Organization, kill_switch=kill_switch, parent_killed=bool(found.parent_killed), now=now
                )
            )
            if refusal is None and principal.acting_from_organization_id:
                child = children.get(principal.organization_id)
                refusal = GONE if child is None else organization_refusal(child)
            if refusal is not None:
                refusals[principal] = refusal
        return refusals

def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    ordered = list(ids)
    return (ordered[i:i + CHECK_BATCH] for i in range(0, len(ordered), CHECK_BATCH))
