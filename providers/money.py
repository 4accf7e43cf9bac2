"""Exact money: an integer in the currency's minor unit, converted to a platform's units only at its boundary.

Why integers: a budget that passes through a float (``0.1 + 0.2``) or through GraphQL's 32-bit
``Int`` comes back as a different budget. Why ISO 4217's exponent from the ``iso4217`` package
(ISO's own published table) and not CLDR's display digits (babel): CLDR shows IDR and HUF
without decimals, but ISO 4217 — and the ad platforms that bill in minor units — count them in
hundredths, so a CLDR exponent would make 1.50 IDR unrepresentable and scale every amount 100×.

An amount a platform cannot hold (12.345 KWD on a platform that counts KWD in hundredths) raises
``AmountNotRepresentable``: it is refused, never rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import simplejson
from iso4217 import Currency

from providers.errors import Rejected

# A minor-unit amount the gateway stores and serves: what fits a signed 64-bit integer.
MAX_AMOUNT_MINOR = 2**63 - 1


class UnknownCurrency(ValueError):
    """Not an ISO 4217 code with a minor unit (``XAU`` has none; ``usd`` is not upper case)."""


class AmountNotRepresentable(Rejected):
    """The platform (or ISO 4217) cannot hold this amount exactly; the caller must change it."""

    def __init__(self, message: str) -> None:
        super().__init__("AMOUNT_NOT_REPRESENTABLE", message)


def exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent: USD 2 (cents), JPY 0 (yen), KWD 3 (fils)."""
    try:
        found = Currency[currency] if currency.isupper() else None
    except KeyError:
        found = None
    if found is None or found.exponent is None:
        raise UnknownCurrency(f"{currency[:10]!r} is not an ISO 4217 currency with a minor unit")
    return int(found.exponent)


@dataclass(frozen=True)
class Money:
    """An amount in the currency's minor unit (USD cents, JPY yen, KWD fils) and its ISO 4217 code."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError(f"amount_minor must be an int, not {type(self.amount_minor).__name__}")
        if abs(self.amount_minor) > MAX_AMOUNT_MINOR:
            raise AmountNotRepresentable(f"{self.amount_minor} does not fit a 64-bit integer")
        exponent(self.currency)

    @classmethod
    def from_major(cls, amount: str | Decimal, currency: str) -> Money:
        """From a major-unit decimal (``"12.34"`` USD); more decimals than ISO 4217 allows is refused.

        Trailing zeros are fine (``"12.340"`` USD is 1234 cents); floats are not accepted at all.
        """
        return cls(_scaled(amount, 10 ** exponent(currency), currency, "ISO 4217"), currency)

    def to_major(self) -> Decimal:
        """The major-unit amount, with exactly the currency's number of decimals (``Decimal("12.34")``)."""
        return Decimal(self.amount_minor).scaleb(-exponent(self.currency))

    def major_string(self) -> str:
        """``"12.34"``, ``"1234"`` (JPY), ``"12.345"`` (KWD): never an exponent, never a float."""
        return format(self.to_major(), "f")

    def to_units(self, per_major: int) -> int:
        """The amount in a platform's own integer unit, ``per_major`` of them to the major unit.

        Meta counts USD in cents (100) but JPY, IDR or KRW in whole units (1): 150 IDR minor
        units (1.50 IDR) have no Meta equivalent and are refused.
        """
        scale = 10 ** exponent(self.currency)
        units, remainder = divmod(self.amount_minor * per_major, scale)
        if remainder:
            raise AmountNotRepresentable(
                f"{self.major_string()} {self.currency} is not a whole number of the platform's units (1/{per_major} {self.currency})"
            )
        return units

    @classmethod
    def from_units(cls, units: int | str, per_major: int, currency: str) -> Money:
        """From a platform's integer units (``"2000"`` Meta cents) back to ISO minor units."""
        try:
            whole = Decimal(str(units))
        except InvalidOperation:
            raise AmountNotRepresentable(f"{str(units)[:40]!r} is not an amount") from None
        return cls(_scaled(whole / Decimal(per_major), 10 ** exponent(currency), currency, "ISO 4217"), currency)


def _scaled(amount: Any, scale: int, currency: str, whose: str) -> int:
    """``amount`` (a major-unit decimal) × ``scale`` as an exact integer, or AmountNotRepresentable."""
    if isinstance(amount, float) or isinstance(amount, bool):
        raise TypeError("money is never a float: pass a decimal string or a Decimal")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise AmountNotRepresentable(f"{str(amount)[:40]!r} is not a decimal amount") from None
    if not value.is_finite():
        raise AmountNotRepresentable(f"{str(amount)[:40]!r} is not a finite amount")
    scaled = value * scale
    if scaled != scaled.to_integral_value():
        raise AmountNotRepresentable(f"{value} {currency} has more decimals than {whose} allows for {currency}")
    return int(scaled)


def json_body(value: Any) -> bytes:
    """JSON with Decimals written as exact numbers (``12.34``, never ``12.339999``): for platforms
    that take money as a JSON number (TikTok)."""
    return simplejson.dumps(value, use_decimal=True, separators=(",", ":")).encode()


def parse_json(content: bytes | str) -> Any:
    """JSON with every non-integer number read as a Decimal, so a platform's ``12.34`` stays exact."""
    return simplejson.loads(content, use_decimal=True)
