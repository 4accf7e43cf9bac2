"""The values a per-post setting can take on one account: Pinterest boards, Slack channels, TikTok privacy levels.

A provider declares such a setting with ``choices_from_account`` and lists its values in
``Provider.setting_choices``. Asking the platform on every page view would burn its rate limit,
so answers are kept per account and setting for a few minutes in this process (``refresh``
skips that copy); an account's expired token is refreshed once, as for any other call.
"""

from __future__ import annotations

import weakref

from cachetools import TTLCache

from gateway.accounts.accounts import find_account, open_credentials, require_provider
from gateway.accounts.tokens import refresh_account_token
from gateway.core import BadInput, NotFound, RateLimited, ServiceError
from gateway.runtime import Runtime
from gateway.storage import Account
from providers import AuthExpired, ProviderError, SettingChoice
from providers import RateLimited as PlatformRateLimited

CACHE_SECONDS = 300
CACHE_ENTRIES = 4096
UNUSABLE = ("disconnected", "token_expired")


class ChoicesUnavailable(ServiceError):
    """The platform could not list the choices now; ``code`` says why (stable, per instance)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SettingChoices:
    """Per-process, briefly cached answers of ``Provider.setting_choices``."""

    def __init__(self, runtime: Runtime, *, ttl_seconds: float = CACHE_SECONDS) -> None:
        # Weakly: this object is kept in a WeakKeyDictionary keyed by the runtime, and a strong
        # reference back would keep every runtime (its database, its pools) alive for good.
        self._runtime = weakref.ref(runtime)
        self._cache: TTLCache[tuple[str, str, int], list[SettingChoice]] = TTLCache(CACHE_ENTRIES, ttl_seconds)

    @property
    def runtime(self) -> Runtime:
        runtime = self._runtime()
        if runtime is None:
            raise RuntimeError("the runtime of these setting choices is gone")
        return runtime

    async def list(self, organization_id: str, account_id: str, setting: str, *, refresh: bool = False) -> list[SettingChoice]:
        """The choices of ``setting`` on the organization's account ``account_id``.

        Raises ``NotFound`` for another organization's account, ``BadInput`` for a setting the
        provider does not take from the account, and ``ChoicesUnavailable`` (``ACCOUNT_DISCONNECTED``,
        ``TOKEN_EXPIRED``, ``PLATFORM_ERROR``) or ``RateLimited`` when the platform cannot answer.
        """
        async with self.runtime.database.read() as session:
            account = await find_account(session, organization_id, account_id)
        if account is None:
            raise NotFound("No such account.")
        provider = require_provider(self.runtime.plugins, account.provider)
        declared = {field.name: field for field in provider.settings}
        # Choices that depend on another value name it after a colon (Reddit's flairs of one
        # subreddit: ``flair_id:pics``); the provider gets the whole string.
        name = setting.partition(":")[0]
        if name not in declared or not declared[name].choices_from_account:
            dynamic = sorted(name for name, field in declared.items() if field.choices_from_account)
            raise BadInput(
                f"{provider.name} has no setting {name!r} whose choices come from the account"
                + (f" (it has: {', '.join(dynamic)})." if dynamic else "."),
                "setting",
            )
        if account.status in UNUSABLE:
            code = "ACCOUNT_DISCONNECTED" if account.status == "disconnected" else "TOKEN_EXPIRED"
            raise ChoicesUnavailable(code, f"The account is {account.status.replace('_', ' ')}; reconnect it to list its choices.")
        # The credentials version is part of the key: a reconnected account never sees the old answers.
        key = (account.id, setting, account.credentials_version or 0)
        if not refresh and key in self._cache:
            return self._cache[key]
        choices = await self._ask(account.id, account.provider, setting)
        self._cache[key] = choices
        return choices

    async def _ask(self, account_id: str, provider_id: str, setting: str) -> list[SettingChoice]:
        provider = require_provider(self.runtime.plugins, provider_id)
        for attempt in (1, 2):
            async with self.runtime.database.read() as session:
                account = await session.get(Account, account_id)
            if account is None:
                raise NotFound("No such account.")
            context = self.runtime.provider_context(provider_id, account_id, open_credentials(self.runtime.secret_key, account))
            try:
                return list(await provider.setting_choices(context, setting))
            except AuthExpired:
                if attempt == 2 or not await refresh_account_token(self.runtime, account_id):
                    raise ChoicesUnavailable("TOKEN_EXPIRED", "The platform refused the account's token; reconnect the account.") from None
            except PlatformRateLimited as limited:
                raise RateLimited(f"{provider.name} is rate limiting this account; try again later.", limited.retry_after or 60.0) from None
            except ProviderError as error:
                raise ChoicesUnavailable("PLATFORM_ERROR", f"{provider.name} could not list the choices: {error.message}") from None
        raise AssertionError("unreachable: the second attempt returns or raises")


_per_runtime: weakref.WeakKeyDictionary[Runtime, SettingChoices] = weakref.WeakKeyDictionary()


def setting_choices(runtime: Runtime) -> SettingChoices:
    """The cache of ``runtime`` (one per process and runtime, made on first use)."""
    choices = _per_runtime.get(runtime)
    if choices is None:
        choices = _per_runtime[runtime] = SettingChoices(runtime)
    return choices
