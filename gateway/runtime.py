"""Everything the running service holds, opened at start and closed at stop.

``create_app`` builds one Runtime; the HTTP app, the GraphQL context and the CLI reach the
database and settings through it rather than through module globals, so tests can run several
side by side.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from gateway.auth.key_watch import KeyWatch
from gateway.auth.rate_limit import CostRateLimiter
from gateway.content.media import restrict_media_root
from gateway.core import clock
from gateway.core.locks import KeyedLocks
from gateway.events import BusEvent, MemoryEventBus, StoredEventRelay
from gateway.outbound.url_guard import GuardedNetworkBackend, GuardedTransport
from gateway.plugins import load_plugins
from gateway.settings import Settings, SettingsError, resolve_secret_key
from gateway.storage import Database
from gateway.storage.migrate import is_up_to_date, upgrade
from gateway.storage.provider_store import DatabaseProviderStore
from providers import Event, ProviderContext, new_http_client
from providers.context import DEFAULT_POOL as PROVIDER_POOL

log = logging.getLogger("socialgate")

OBSERVER_GRACE_SECONDS = 5.0  # how long stop waits for async on_event observers still running


class Runtime:
    def __init__(self, settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        self.secret_key = resolve_secret_key(settings)
        self.plugins = load_plugins(settings.plugins, trace=settings.trace_plugins)
        # One pooled client for every provider call; tests pass a transport scripted with the
        # platforms' real responses. By default every connection passes the SSRF guard: some
        # providers call hosts a user typed in (a Mastodon instance, a PDS, a webhook URL).
        self.http = new_http_client(
            http_transport
            or GuardedTransport(GuardedNetworkBackend(allow_private=settings.allow_private_urls), limits=PROVIDER_POOL)
        )
        self.rate_limiter = CostRateLimiter()
        self.rate_limit_tier = self.rate_limiter.tier.name
        self.events = MemoryEventBus()
        self.relay = StoredEventRelay(self.database, self.events)
        # Open subscriptions re-check their key: the global kill switch is read at each check.
        self.key_watch = KeyWatch(self.database, interval=settings.key_recheck_seconds, global_kill_switch=lambda: self.settings.kill_switch)
        # Per-account locks of this process (token refreshes of one account run one at a time).
        self.account_locks = KeyedLocks()
        # Set by whoever runs the publishing engine in this process (the app's lifespan, `worker`).
        self.scheduler: Any = None
        self.observer_grace = OBSERVER_GRACE_SECONDS

    def provider_context(self, provider_id: str, account_id: str | None, credentials: dict[str, Any]) -> ProviderContext:
        """The context for one provider call on behalf of one account (credentials already decrypted)."""
        return ProviderContext(
            http=self.http,
            provider_id=provider_id,
            account_id=account_id,
            credentials=credentials,
            clock=lambda: clock.utcnow(),  # looked up per call, so tests can move time
            log=logging.LoggerAdapter(
                logging.getLogger(f"socialgate.provider.{provider_id}"), {"provider": provider_id, "account_id": account_id}
            ),
            store=DatabaseProviderStore(self.database, provider_id, account_id, self.secret_key),
        )

    async def start(self) -> None:
        """Prepare the database: SQLite migrates itself; PostgreSQL must be migrated explicitly.

        A shared server database is migrated by `socialgate migrate` in a deploy step, never by
        whichever of several gateway processes happens to start first.
        """
        if self.settings.is_sqlite:
            await upgrade(self.database, self.secret_key)
        elif not await is_up_to_date(self.database):
            raise SettingsError(["the database schema is not up to date: run `socialgate migrate` first"])
        restrict_media_root(self.settings)
        await self.relay.start()
        await self.key_watch.start()
        log.info("runtime started", extra={"database": self.database.url.render_as_string(hide_password=True)})

    def wake_scheduler(self) -> None:
        """Something became due now: let this process's scheduler look without waiting to poll."""
        if self.scheduler is not None:
            self.scheduler.wake()

    async def publish(self, event: BusEvent, subject_id: str | None = None) -> None:
        """Hand a stored event, once its transaction committed, to live subscribers and observers.

        Every event is stored first (``record_job_event``, ``record_org_event``): the relays of
        the other processes carry it to their subscribers from the row.
        """
        await self.events.publish(event)
        if self.plugins.has_observers():  # seven events per published post: no copies for nobody
            self.plugins.emit(
                Event(kind=event.kind, organization_id=event.organization_id, occurred_at=event.occurred_at,
                      subject_id=subject_id or event.subject_id, payload=dict(event.payload))
            )

    async def stop(self) -> None:
        await self.plugins.drain(self.observer_grace)  # observers may still use the pool and the database
        await self.key_watch.stop()
        await self.relay.stop()
        await self.events.close()
        await self.http.aclose()
        await self.database.dispose()
