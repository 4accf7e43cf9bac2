"""Exact money (providers.money): ISO 4217 exponents, no floats, refusal instead of rounding.

Property-based: every amount that fits survives each conversion unchanged, and an amount a unit
cannot hold is refused rather than rounded.
"""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.money import MAX_AMOUNT_MINOR, AmountNotRepresentable, Money, UnknownCurrency, exponent, json_body, parse_json

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "BHD", "IDR", "CLP", "HUF", "UYW"])
AMOUNTS = st.integers(min_value=-(10**15), max_value=10**15)


def test_exponents_come_from_iso_4217():
    assert [exponent(c) for c in ("USD", "JPY", "KWD", "IDR", "UYW")] == [2, 0, 3, 2, 4]


@pytest.mark.parametrize("code", ["usd", "ZZZ", "XAU", "US", ""])
def test_a_code_without_a_minor_unit_is_refused(code):
    with pytest.raises(UnknownCurrency):
        Money(1, code)


def test_floats_never_enter():
    with pytest.raises(TypeError):
        Money.from_major(12.34, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(12.0, "USD")  # type: ignore[arg-type]


def test_the_units_the_issue_names():
    assert Money.from_major("12.34", "USD") == Money(1234, "USD")
    assert Money.from_major("1234", "JPY") == Money(1234, "JPY")
    assert Money.from_major("12.345", "KWD") == Money(12345, "KWD")
    assert Money.from_major("2100000000", "IDR").amount_minor == 210_000_000_000  # past GraphQL's 32-bit Int


@given(AMOUNTS, CURRENCIES)
def test_major_string_round_trips(amount, currency):
    money = Money(amount, currency)
    assert Money.from_major(money.major_string(), currency) == money
    assert Money.from_major(money.to_major(), currency) == money
    assert "e" not in money.major_string().lower()


@given(AMOUNTS, CURRENCIES, st.sampled_from([1, 100, 1000]))
def test_platform_units_round_trip_or_are_refused(amount, currency, per_major):
    money = Money(amount, currency)
    scale = 10 ** exponent(currency)
    if (amount * per_major) % scale:
        with pytest.raises(AmountNotRepresentable):
            money.to_units(per_major)
    else:
        assert Money.from_units(str(money.to_units(per_major)), per_major, currency) == money


@given(AMOUNTS, CURRENCIES, st.integers(min_value=1, max_value=6))
def test_more_decimals_than_iso_allows_are_refused_not_rounded(amount, currency, extra):
    text = Money(amount, currency).major_string()
    text = text + ("" if "." in text else ".") + "0" * (extra - 1) + "1"
    with pytest.raises(AmountNotRepresentable):
        Money.from_major(text, currency)


@given(AMOUNTS, CURRENCIES)
def test_json_numbers_stay_exact(amount, currency):
    money = Money(amount, currency)
    body = json_body({"budget": money.to_major()})
    assert Money.from_major(parse_json(body)["budget"], currency) == money


def test_64_bit_bounds():
    assert Money(MAX_AMOUNT_MINOR, "USD").amount_minor == 2**63 - 1
    with pytest.raises(AmountNotRepresentable):
        Money(MAX_AMOUNT_MINOR + 1, "USD")
    for junk in ("NaN", "Infinity", "12,34", "twelve"):
        with pytest.raises(AmountNotRepresentable):
            Money.from_major(junk, "USD")
    assert Money.from_major(Decimal("-0.50"), "USD") == Money(-50, "USD")


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_the_int64_scalar_carries_every_64_bit_integer(value):
    from schema.scalars import INT64

    assert INT64.parse_value(INT64.serialize(value)) == value
    assert INT64.parse_value(value) == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 12.5, True, "1e3", "12.34", ""])
def test_the_int64_scalar_refuses_what_is_not_a_64_bit_integer(value):
    from strawberry.exceptions import StrawberryInputCoercionError

    from schema.scalars import INT64

    with pytest.raises(StrawberryInputCoercionError):
        INT64.parse_value(value)
