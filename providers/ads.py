"""The ads surface a provider may offer (``Provider.ads``): campaigns, their status, their insights.

Money is always ``Money(amount_cents, currency)`` here; each adapter converts at its own boundary
(Meta minor units, TikTok decimal major units, Apple ``{amount: "decimal string", currency}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal, Protocol, runtime_checkable

from providers.context import ProviderContext

AdStatus = Literal["active", "paused", "archived"]


@dataclass(frozen=True)
class Money:
    """An amount in the currency's minor unit (cents for USD) and an ISO 4217 code."""

    amount_cents: int
    currency: str

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"currency must be an ISO 4217 code such as USD, not {self.currency!r}")

    @classmethod
    def from_major(cls, amount: str | float | Decimal, currency: str) -> Money:
        """From a major-unit amount ("12.34", 12.34), rounded half-even to the cent."""
        cents = (Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return cls(int(cents), currency)

    def to_major(self) -> Decimal:
        return Decimal(self.amount_cents) / 100


@dataclass(frozen=True)
class AdCampaignSpec:
    name: str
    objective: str
    daily_budget: Money
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: AdStatus = "paused"


@dataclass(frozen=True)
class AdCampaignRecord:
    """An ad campaign as the platform holds it."""

    external_id: str
    name: str
    objective: str
    status: AdStatus
    daily_budget: Money


@dataclass(frozen=True)
class AdInsight:
    """One day of an ad campaign's delivery."""

    external_campaign_id: str
    day: date
    impressions: int
    clicks: int
    spend: Money
    conversions: int | None = None


@runtime_checkable
class AdsAdapter(Protocol):
    async def create_campaign(self, ctx: ProviderContext, spec: AdCampaignSpec) -> AdCampaignRecord:
        """Create a campaign on the platform and return it as stored there."""

    async def set_campaign_status(self, ctx: ProviderContext, external_id: str, status: AdStatus) -> AdCampaignRecord:
        """Activate, pause or archive a campaign."""

    async def list_campaigns(self, ctx: ProviderContext) -> list[AdCampaignRecord]:
        """The account's campaigns."""

    async def fetch_insights(self, ctx: ProviderContext, external_id: str, start: date, end: date) -> list[AdInsight]:
        """Daily figures for ``start``..``end`` inclusive; days with no delivery may be omitted."""
