"""Everything the running service holds, opened at start and closed at stop.

``create_app`` builds one Runtime; the HTTP app, the GraphQL context and the CLI reach the
database and settings through it rather than through module globals, so tests can run several
side by side.
"""

from __future__ import annotations

import logging

from gateway.rate_limit import CostRateLimiter
from gateway.settings import Settings, SettingsError, resolve_secret_key
from gateway.storage import Database
from gateway.storage.migrate import is_up_to_date, upgrade

log = logging.getLogger("socialgate")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        self.secret_key = resolve_secret_key(settings)
        self.rate_limiter = CostRateLimiter()
        self.rate_limit_tier = self.rate_limiter.tier.name

    async def start(self) -> None:
        """Prepare the database: SQLite migrates itself; PostgreSQL must be migrated explicitly.

        A shared server database is migrated by `socialgate migrate` in a deploy step, never by
        whichever of several gateway processes happens to start first.
        """
        if self.settings.is_sqlite:
            await upgrade(self.database)
        elif not await is_up_to_date(self.database):
            raise SettingsError(["the database schema is not up to date: run `socialgate migrate` first"])
        log.info("runtime started", extra={"database": self.database.url.render_as_string(hide_password=True)})

    async def stop(self) -> None:
        await self.database.dispose()
