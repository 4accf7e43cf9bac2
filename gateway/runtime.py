"""Everything the running service holds, opened at start and closed at stop.

``create_app`` builds one Runtime; the HTTP app, the GraphQL context and the CLI reach the
database and settings through it rather than through module globals, so tests can run several
side by side.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from redis.asyncio import Redis

from gateway.audit.log import AuditRetention
from gateway.auth import CostRateLimiter, KeyWatch, RedisCostRateLimiter
from gateway.content import restrict_media_root
from gateway.core import BackgroundTasks, KeyedLocks, RedisKeyedLocks, clock
from gateway.events import BusEvent, MemoryEventBus, RedisEventBus, StoredEventRelay
from gateway.observability import forget_process, watch_pools
from gateway.outbound import GuardedNetworkBackend, GuardedTransport, without_cookies
from gateway.plugins import load_plugins
from gateway.settings import ENV_PREFIX, SECRET_KEY_FILENAME, Settings, SettingsError, StartupError, resolve_secret_key
from gateway.storage import (
    Database,
    DatabaseProviderStore,
    DatabaseUnreachable,
    Heartbeat,
    SecretKeyMismatch,
    check_secret_key,
    current_revision,
    head_revision,
    masked_url,
    upgrade,
)
from providers import Event, ProviderContext, new_http_client
from providers.context import DEFAULT_POOL as PROVIDER_POOL

log = logging.getLogger("socialgate")

OBSERVER_GRACE_SECONDS = 5.0  # how long stop waits for async on_event observers still running
# With Redis, the relay is the safety net only (events whose publisher died before its XADD or
# could not reach Redis): a slow sweep, and one round after another while this process's reader
# cannot reach Redis. Its lookback covers a sweep and the settling time.
REDIS_RELAY_SWEEP_SECONDS = 10.0
REDIS_RELAY_SETTLE_SECONDS = 5.0  # a sweep leaves events this young to their publisher


class Runtime:
    def __init__(self, settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        watch_pools(self.database)  # socialgate_db_connections_in_use (gateway.observability)
        self.secret_key = resolve_secret_key(settings)
        self.plugins = load_plugins(settings.plugins, trace=settings.trace_plugins)
        # One pooled client for every provider call; tests pass a transport scripted with the
        # platforms' real responses. By default every connection passes the SSRF guard: some
        # providers call hosts a user typed in (a Mastodon instance, a PDS, a webhook URL).
        # It keeps no cookies: one account's would ride along with another's (``outbound.cookies``).
        self.http = without_cookies(new_http_client(
            http_transport
            or GuardedTransport(GuardedNetworkBackend(allow_private=settings.allow_private_urls), limits=PROVIDER_POOL)
        ))
        # SOCIALGATE_EVENTS_URL=redis://…: events, rate-limit buckets and refresh locks are shared
        # by every process through Redis (docs/events-redis.md); otherwise each keeps its own.
        self.redis: Redis | None = Redis.from_url(settings.events_url, decode_responses=True) if settings.uses_redis else None
        self.rate_limiter = CostRateLimiter() if self.redis is None else RedisCostRateLimiter(self.redis)
        self.rate_limit_tier = self.rate_limiter.tier.name
        if self.redis is None:
            self.events: MemoryEventBus = MemoryEventBus()
            self.relay = StoredEventRelay(self.database, self.events)
        else:
            self.events = RedisEventBus(self.redis, on_outage=lambda: self.relay.catch_up(settled_only=False))
            self.relay = StoredEventRelay(
                self.database, self.events, interval=REDIS_RELAY_SWEEP_SECONDS, settle=REDIS_RELAY_SETTLE_SECONDS,
                lookback=None if self.database.is_sqlite else REDIS_RELAY_SWEEP_SECONDS + REDIS_RELAY_SETTLE_SECONDS + 10.0,
            )
        # Open subscriptions re-check their key: the global kill switch is read at each check.
        self.key_watch = KeyWatch(self.database, interval=settings.key_recheck_seconds, global_kill_switch=lambda: self.settings.kill_switch)
        # Per-account locks (token refreshes of one account run one at a time; across processes with Redis).
        self.account_locks = KeyedLocks() if self.redis is None else RedisKeyedLocks(self.redis)
        # Set by whoever runs the publishing engine in this process (the app's lifespan, `worker`).
        self.scheduler: Any = None
        # Set beside the scheduler: the metrics collector (gateway.metrics.collector), woken by refreshMetrics.
        self.metrics: Any = None
        # Set beside the scheduler: the webhook worker (gateway.webhooks.dispatcher), woken by each event.
        self.webhook_dispatcher: Any = None
        # Duties the roof adds to every scheduler's chores in this process (engine.chores.Chore):
        # those of wings the engine may not import, such as recurring posts.
        self.chores: list[Any] = []
        # Whatever scheduler this process runs records that it lives (gateway.storage.worker_heartbeats).
        self.heartbeat = Heartbeat(self.database, poll_seconds=settings.scheduler_poll_seconds)
        self.observer_grace = OBSERVER_GRACE_SECONDS
        # Work a command starts after its commit (deletePost's platform calls), awaited at stop.
        self.background = BackgroundTasks("background work", log)
        # Audit entries older than SOCIALGATE_AUDIT_RETENTION_DAYS are pruned by every process.
        self.audit_retention = AuditRetention(self.database, retention_days=settings.audit_retention_days)

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
        """Prepare the database (``prepare_database``), then start what runs in the background."""
        await prepare_database(self.settings, self.database, self.secret_key, migrate=self.settings.is_sqlite)
        restrict_media_root(self.settings)
        await self.relay.start()
        await self.events.start()
        await self.key_watch.start()
        self.audit_retention.start()
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
        if self.webhook_dispatcher is not None:  # its deliveries committed with it: due now
            self.webhook_dispatcher.wake()
        if self.plugins.has_observers():  # seven events per published post: no copies for nobody
            self.plugins.emit(
                Event(kind=event.kind, organization_id=event.organization_id, occurred_at=event.occurred_at,
                      subject_id=subject_id or event.subject_id, payload=dict(event.payload))
            )

    async def stop(self) -> None:
        await self.plugins.drain(self.observer_grace)  # observers may still use the pool and the database
        await self.audit_retention.stop()
        await self.background.drain(self.observer_grace)
        await self.key_watch.stop()
        await self.relay.stop()
        await self.events.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.http.aclose()
        await self.database.dispose()
        forget_process()


async def prepare_database(settings: Settings, database: Database, secret_key: bytes, *, migrate: bool) -> None:
    """Make sure this process may use the database, or raise StartupError saying why and what to do.

    The database must answer; it is migrated when ``migrate`` (SQLite does so itself, and
    `socialgate migrate`), and otherwise must be up to date: a shared server database is migrated
    in a deploy step, never by whichever of several gateway processes starts first. The secret key
    must be the one the database was first used with, checked before migrating too, since a
    revision may derive rows from the key.
    """
    try:
        await database.check_reachable()
    except DatabaseUnreachable as error:
        raise StartupError([str(error)]) from None
    await _check_key(settings, database, secret_key)
    if migrate:
        await upgrade(database, secret_key)
    else:
        revision, head = await current_revision(database), head_revision()
        if revision != head:
            found = f"is at revision {revision}" if revision else "has no tables yet"
            raise StartupError([
                f"the database {masked_url(database.url)} {found} and this socialgate needs revision {head}: "
                "run `socialgate migrate` first (with the same SOCIALGATE_DATABASE_URL and SOCIALGATE_SECRET_KEY)"
            ])
    await _check_key(settings, database, secret_key)


async def _check_key(settings: Settings, database: Database, secret_key: bytes) -> None:
    try:
        await check_secret_key(database, secret_key)
    except SecretKeyMismatch as mismatch:
        where = f"the database {masked_url(database.url)}"
        if mismatch.recorded_at is not None:
            problem = f"this key is not the one {where} was first used with (on {mismatch.recorded_at:%Y-%m-%d %H:%M} UTC)"
        else:
            problem = f"this key opens none of the provider credentials already sealed in {where}"
        source = (
            "" if settings.secret_key
            else f" This process has none set and read the one generated into {settings.resolved_data_dir / SECRET_KEY_FILENAME}."
        )
        raise SettingsError([
            f"{ENV_PREFIX}SECRET_KEY: {problem}; with it, no stored credential could be opened.{source} "
            f"Start every serve, worker and migrate process with the same {ENV_PREFIX}SECRET_KEY."
        ]) from None


async def check_startup(settings: Settings) -> None:
    """What ``Runtime.start`` checks of the database, on its own: `serve` runs it before uvicorn,
    so a problem is printed as the other commands print it instead of inside a server's traceback."""
    database = Database(settings.database_url)
    try:
        await prepare_database(settings, database, resolve_secret_key(settings), migrate=settings.is_sqlite)
    finally:
        await database.dispose()
