"""Money as the API takes and shows it: checked input, and a localized ``formatted`` string.

Input is an integer of minor units and a currency code; anything else is a user error with a
stable code, so a client learns that 12.345 USD or ``usd`` is wrong before any platform is asked.
``formatted`` comes from babel (CLDR): it is for people only and never parsed back.
"""

from __future__ import annotations

from babel.numbers import format_currency

from gateway.core import UserError
from providers import AmountNotRepresentable, Money, UnknownCurrency

DEFAULT_LOCALE = "en_US"


def money_input(amount_minor: int, currency: str, field: list[str]) -> Money:
    """A Money from API input, or a user error on ``field`` (``CURRENCY_UNKNOWN``, ``AMOUNT_INVALID``)."""
    try:
        money = Money(amount_minor, currency)
    except UnknownCurrency:
        raise UserError("CURRENCY_UNKNOWN", f"{currency[:10]!r} is not an ISO 4217 currency code with a minor unit.", [*field, "currency"]) from None
    except AmountNotRepresentable as error:
        raise UserError("AMOUNT_INVALID", error.message, [*field, "amountMinor"]) from None
    if money.amount_minor < 0:
        raise UserError("AMOUNT_INVALID", "An amount is never negative.", [*field, "amountMinor"])
    return money


def formatted(money: Money, locale: str = DEFAULT_LOCALE) -> str:
    """``$12.34``, ``¥1,234``, ``KWD 12.345``: the exact amount, with the currency's ISO decimals."""
    digits = money.major_string()
    decimals = len(digits.partition(".")[2])
    pattern = "¤#,##0" + ("." + "0" * decimals if decimals else "")
    return format_currency(money.to_major(), money.currency, format=pattern, locale=locale, currency_digits=False)
