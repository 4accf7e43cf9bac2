"""The ads surface a provider may offer (``Provider.ads``): ad accounts, their campaigns, ad sets and ads.

One adapter call covers all three levels (``AdLevel``): the platforms differ in paths and field
names, not in what a campaign, an ad set (ad group) and an ad are, so one method per operation
keeps every adapter — and the conformance kit's ads section — one table long.

Money is always ``Money(amount_minor, currency)`` here (``providers.money``); each adapter
converts at its own boundary (Meta integer units as strings, TikTok decimal major units, Apple
``{amount: "decimal string", currency}``) and refuses, with ``AmountNotRepresentable``, an amount
its platform cannot hold. Figures a platform does not report are None, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from providers.context import ProviderContext
from providers.errors import Rejected
from providers.money import Money

AdLevel = Literal["campaign", "ad_set", "ad"]
AdStatus = Literal["active", "paused", "archived", "deleted"]
AD_LEVELS: tuple[AdLevel, ...] = ("campaign", "ad_set", "ad")
AD_STATUSES: tuple[AdStatus, ...] = ("active", "paused", "archived", "deleted")
# The level each level lives under (None: directly under the ad account).
PARENT_LEVEL: dict[str, AdLevel | None] = {"campaign": None, "ad_set": "campaign", "ad": "ad_set"}


@dataclass(frozen=True)
class AdAccountInfo:
    """An ad account a connected identity may act on (Meta ``act_…``, a TikTok advertiser, an Apple org)."""

    external_id: str
    name: str
    currency: str
    timezone: str | None = None


@dataclass(frozen=True)
class AdAccountRef:
    """Which ad account a call acts on, and the currency its platform counts money in."""

    external_id: str
    currency: str


@dataclass(frozen=True)
class AdSpec:
    """What to create. ``parent_id`` is the campaign of an ad set, the ad set of an ad."""

    level: AdLevel
    name: str
    parent_id: str | None = None
    objective: str | None = None
    daily_budget: Money | None = None
    bid: Money | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: AdStatus = "paused"
    creative_id: str | None = None
    # What only this platform asks for, sent as given: Meta's targeting and optimization_goal,
    # TikTok's billing_event and placements, Apple's adamId and countriesOrRegions.
    platform_fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AdChanges:
    """What to change; None leaves a field as it is."""

    name: str | None = None
    daily_budget: Money | None = None
    bid: Money | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if getattr(self, k) is not None}


@dataclass(frozen=True)
class AdObject:
    """A campaign, ad set or ad as the platform holds it.

    ``status`` is what was asked for (ours, normalised); ``effective_status`` is the platform's
    own word for whether it delivers (Meta ``effective_status``, TikTok ``secondary_status``,
    Apple ``servingStatus``), kept verbatim.
    """

    level: AdLevel
    external_id: str
    name: str
    status: AdStatus
    effective_status: str | None = None
    parent_id: str | None = None
    objective: str | None = None
    daily_budget: Money | None = None
    bid: Money | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    raw: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class AdInsight:
    """One day of an object's delivery; None where the platform does not report the figure."""

    level: AdLevel
    external_id: str
    day: date
    impressions: int | None = None
    clicks: int | None = None
    spend: Money | None = None
    reach: int | None = None
    conversions: int | None = None


def merge_platform_fields(body: dict[str, Any], spec: AdSpec, money_fields: frozenset[str]) -> dict[str, Any]:
    """``body`` with the spec's ``platform_fields`` added, refusing any that would set what the
    adapter sets itself or carry money: money goes through ``Money`` (exact, and under the
    organization's spend cap), never through a pass-through field."""
    clashing = sorted(k for k in spec.platform_fields if k in body or k in money_fields)
    if clashing:
        raise Rejected("PLATFORM_FIELD_NOT_ALLOWED", f"set {', '.join(clashing)} through the API's own fields, not platformFields")
    return {**body, **spec.platform_fields}


@runtime_checkable
class AdsAdapter(Protocol):
    async def list_ad_accounts(self, ctx: ProviderContext) -> list[AdAccountInfo]:
        """The ad accounts the connected identity may act on."""

    async def list_objects(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, parent_id: str | None = None
    ) -> list[AdObject]:
        """Every object of ``level`` in the account (under ``parent_id`` when given)."""

    async def get_object(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str) -> AdObject:
        """One object; ``Rejected("NOT_FOUND")`` when the platform has no such object."""

    async def create_object(self, ctx: ProviderContext, account: AdAccountRef, spec: AdSpec) -> AdObject:
        """Create it on the platform and return it as stored there."""

    async def update_object(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, changes: AdChanges
    ) -> AdObject:
        """Change name, budget, bid or schedule; return the object as stored afterwards."""

    async def set_status(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, status: AdStatus
    ) -> AdObject:
        """Activate, pause, archive or delete; return the object as stored afterwards."""

    async def fetch_insights(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, start: date, end: date
    ) -> list[AdInsight]:
        """Daily figures for ``start``..``end`` inclusive; days with no delivery may be omitted."""
