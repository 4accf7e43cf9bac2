"""Exact ratios of daily insights: CPM, CPC and CTR from integers, never through a float."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from gateway.ads.insights import RATIO_PLACES, DailyFigures, ratio
from providers import Money

COUNTS = st.one_of(st.none(), st.integers(min_value=0, max_value=10**12))
SPEND = st.one_of(st.none(), st.builds(Money, st.integers(min_value=0, max_value=10**15), st.sampled_from(["USD", "JPY", "KWD", "IDR"])))


def half_even(value: Fraction) -> Decimal:
    """The exact rational, rounded half-even to RATIO_PLACES, without Decimal division."""
    scaled = value * 10**RATIO_PLACES
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        floor += 1
    return Decimal(floor).scaleb(-RATIO_PLACES)


@given(COUNTS, COUNTS, SPEND)
def test_ratios_equal_the_exact_rational_rounded_half_even(impressions, clicks, spend):
    figures = DailyFigures(date(2026, 1, 15), impressions, clicks, spend, None, None)
    spend_major = None if spend is None else Fraction(spend.amount_minor, 10 ** len(spend.major_string().partition(".")[2]))
    expected_ctr = half_even(Fraction(clicks, impressions)) if clicks is not None and impressions else None
    expected_cpc = half_even(spend_major / clicks) if spend_major is not None and clicks else None
    expected_cpm = half_even(spend_major * 1000 / impressions) if spend_major is not None and impressions else None
    assert (figures.ctr, figures.cpc, figures.cpm) == (expected_ctr, expected_cpc, expected_cpm)


def test_a_missing_part_or_a_zero_divisor_is_no_figure():
    assert ratio(None, 10) is None and ratio(5, None) is None and ratio(5, 0) is None
    assert ratio(1, 3) == Decimal("0.333333") and ratio(2, 3) == Decimal("0.666667")
    assert ratio(Decimal("0.0000005"), 1) == Decimal("0.000000")  # half-even: 0.0000005 → 0
    assert ratio(Decimal("0.0000015"), 1) == Decimal("0.000002")
