"""The ads section of the conformance kit fails adapters that get money or errors wrong."""

from decimal import Decimal

import pytest

from plugins.tiktok_ads import TikTokAds, TikTokAdsAdapter
from providers import Capabilities, Money
from tests.providers import test_tiktok_ads as tiktok


class FloatBudgets(TikTokAdsAdapter):
    """Sends budgets through a float, as a careless adapter would."""

    def _money_and_schedule(self, level, account, budget, bid, starts_at, ends_at):
        values = super()._money_and_schedule(level, account, budget, bid, starts_at, ends_at)
        if "budget" in values:
            values["budget"] = Decimal(float(values["budget"]) * 1.0000001)  # the bug under test
        return values


class CarelessTikTok(TikTokAds):
    id = "careless_tiktok"
    capabilities = Capabilities(publish=False, ads=True)
    ads = FloatBudgets()


class KitOnCareless(tiktok.TestTikTokAdsConformance):
    provider = CarelessTikTok()


def test_a_budget_bent_by_a_float_fails_the_round_trip():
    with pytest.raises(AssertionError, match="did not come back unchanged|AMOUNT_NOT_REPRESENTABLE|raised"):
        KitOnCareless().test_ads_budgets_round_trip_exactly()


def test_missing_error_classes_fail_the_taxonomy_check():
    class NoErrors(tiktok.TestTikTokAdsConformance):
        error_cases = tiktok.TestTikTokAdsConformance.error_cases[:1]

    with pytest.raises(AssertionError, match="RateLimited"):
        NoErrors().test_ads_error_cases_cover_the_taxonomy()


def test_a_wrongly_mapped_error_fails():
    from providers import Rejected
    from providers.testing import ErrorCase
    
    class Misread(tiktok.TestTikTokAdsConformance):
        error_cases = [ErrorCase("token expired read as a refusal", [tiktok.envelope(code=40105, message="expired")], Rejected)]

    with pytest.raises(AssertionError, match="expected Rejected"):
        Misread().test_ads_errors_map_to_typed_errors()


def test_an_amount_sent_anyway_fails_the_unrepresentable_check():
    class ClaimsKwdUnrepresentable(tiktok.TestTikTokAdsConformance):
        unrepresentable = [Money(12345, "KWD")]  # TikTok does take it: the kit must notice the request went out

    with pytest.raises(AssertionError):
        ClaimsKwdUnrepresentable().test_ads_unrepresentable_amounts_are_refused_before_sending()



def test_an_ads_only_provider_is_declared_so_and_takes_no_posts():
    from plugins.meta_ads import MetaAds
    from providers import PostDraft, Provider, validate_draft
    from providers.validation import check_declarations

    assert check_declarations(MetaAds()) == []
    assert [i.code for i in validate_draft(MetaAds(), PostDraft(text="hello"))] == ["PUBLISH_NOT_SUPPORTED"]

    class Nothing(Provider):
        id = "nothing"
        name = "Nothing"
        capabilities = Capabilities(publish=False)

    assert "INCONSISTENT_CAPABILITIES" in {i.code for i in check_declarations(Nothing())}
