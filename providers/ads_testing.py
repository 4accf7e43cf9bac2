"""The conformance kit's ads section: check an ads adapter against its platform's real answers.

Subclass ``AdsConformance`` in a ``Test…`` class beside your ``ProviderConformance``::

    class TestMetaAdsConformance(AdsConformance):
        provider = MetaAds()
        credentials = {"access_token": "EAAB…"}
        account = AdAccountRef("act_1234", "USD")
        calls = [AdsCall("create a campaign", lambda ads, ctx, acct: ads.create_object(ctx, acct, spec), steps, check)]
        error_cases = [ErrorCase("token expired", [reply(400, json={"error": {"code": 190, …}})], AuthExpired)]

        def echo_campaign(self, request):  # answer a campaign create as the platform would, budget echoed
            ...

The checks: the adapter is declared; each scripted call succeeds, uses all its answers and passes
its own ``check`` (the exact requests sent, the records returned); the error cases cover the
taxonomy and map to the right typed errors; a refused connection is ``TransientError`` and a
create whose answer was lost is ``Unconfirmed``; budgets in USD, JPY (no minor unit) and KWD
(three decimals) go to the platform and come back exactly; an amount the platform cannot hold,
and a money field slipped in through ``platform_fields``, are refused before anything is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from providers.ads import AdAccountRef, AdsAdapter, AdSpec
from providers.errors import AuthExpired, RateLimited, Rejected, TransientError, Unconfirmed
from providers.money import AmountNotRepresentable, Money
from providers.provider import Provider
from providers.store import MemoryProviderStore
from providers.testing import ErrorCase, Outcome, Step, call_scripted, request_line

AdsOperation = Callable[[AdsAdapter, Any, AdAccountRef], Coroutine[Any, Any, Any]]

# Budgets every adapter must carry exactly: cents, a currency without a minor unit, and fils.
ROUND_TRIP_BUDGETS = (Money(1234, "USD"), Money(1234, "JPY"), Money(12340, "KWD"))


@dataclass(frozen=True)
class AdsCall:
    """One adapter call, the platform's scripted answers, and the author's check of what happened."""

    label: str
    operation: AdsOperation
    steps: Sequence[Step]
    check: Callable[[Any, list[httpx.Request]], None]


def list_campaigns(ads: AdsAdapter, ctx: Any, account: AdAccountRef) -> Coroutine[Any, Any, Any]:
    """The call error cases run by default: reading the account's campaigns."""
    return ads.list_objects(ctx, account, "campaign")


def create_campaign(budget: Money, name: str = "Kit campaign") -> AdsOperation:
    def operation(ads: AdsAdapter, ctx: Any, account: AdAccountRef) -> Coroutine[Any, Any, Any]:
        return ads.create_object(ctx, account, AdSpec("campaign", name, objective=None, daily_budget=budget))

    return operation


class AdsConformance:
    """Subclass in a ``Test…`` class; set the attributes; implement ``echo_campaign``."""

    provider: Provider
    credentials: Mapping[str, Any] = {}
    account: AdAccountRef
    calls: Sequence[AdsCall] = ()
    error_cases: Sequence[ErrorCase] = ()
    error_operation: AdsOperation = staticmethod(list_campaigns)  # type: ignore[assignment]
    # Amounts the platform cannot hold (Meta counts KWD in hundredths: 12.345 KWD is refused).
    unrepresentable: Sequence[Money] = ()
    # A field of the platform that carries money (Meta ``lifetime_budget``): passed in
    # ``platform_fields`` it must be refused, or it would slip past ``Money`` and the spend cap.
    money_platform_field: str = ""
    stored: Mapping[tuple[str, str], Mapping[str, Any]] = {}

    # -- for the author ---------------------------------------------------------------------

    def echo_campaign(self, budget: Money) -> Sequence[Step]:
        """The platform's answers to creating a campaign, each echoing the budget it was sent in the
        platform's own encoding (read it from the request, as the platform would)."""
        raise AssertionError(f"{type(self).__name__} must script echo_campaign to round-trip budgets")

    # -- helpers ----------------------------------------------------------------------------

    def run_call(self, operation: AdsOperation, steps: Sequence[Step], account: AdAccountRef | None = None) -> Outcome:
        adapter = self.provider.ads
        assert adapter is not None
        target = account or self.account
        return asyncio.run(
            call_scripted(
                self.provider, steps, lambda ctx: operation(adapter, ctx, target),
                credentials=self.credentials, store=MemoryProviderStore(self.stored),
            )
        )

    def round_trip(self, budget: Money) -> Money | None:
        """Create a campaign with ``budget`` in an account of its currency; the budget it comes back with."""
        account = AdAccountRef(self.account.external_id, budget.currency)
        outcome = self.run_call(create_campaign(budget), self.echo_campaign(budget), account)
        assert outcome.error is None, f"creating a campaign with {budget} raised {outcome.error!r}"
        return outcome.result.daily_budget

    # -- the checks -------------------------------------------------------------------------

    def test_ads_adapter_is_declared(self) -> None:
        assert self.provider.capabilities.ads and isinstance(self.provider.ads, AdsAdapter)

    def test_ads_calls_map_success(self) -> None:
        assert self.calls, "script the platform's real answers to the ads calls in `calls`"
        for call in self.calls:
            outcome = self.run_call(call.operation, call.steps)
            assert outcome.error is None, f"{call.label}: raised {outcome.error!r}"
            assert len(outcome.sent) == len(call.steps), f"{call.label}: {len(call.steps) - len(outcome.sent)} scripted answers unused"
            call.check(outcome.result, outcome.sent)

    def test_ads_error_cases_cover_the_taxonomy(self) -> None:
        needed = {RateLimited, TransientError, AuthExpired, Rejected}
        covered = {kind for case in self.error_cases for kind in needed if issubclass(case.raises, kind)}
        missing = sorted(kind.__name__ for kind in needed - covered)
        assert not missing, f"add ads error_cases scripted with the platform's real answers for: {', '.join(missing)}"

    def test_ads_errors_map_to_typed_errors(self) -> None:
        failures = []
        for case in self.error_cases:
            outcome = self.run_call(self.error_operation, case.steps)
            error = outcome.error
            if len(outcome.sent) != len(case.steps):
                failures.append(f"{case.label}: {len(case.steps) - len(outcome.sent)} scripted answers unused")
            elif not isinstance(error, case.raises):
                failures.append(f"{case.label}: expected {case.raises.__name__}, got {error!r}")
            elif case.code is not None and error.code != case.code:
                failures.append(f"{case.label}: expected code {case.code}, got {error.code}")
            elif case.retry_after is not None and getattr(error, "retry_after", None) != case.retry_after:
                failures.append(f"{case.label}: expected retry_after {case.retry_after}, got {getattr(error, 'retry_after', None)}")
        assert not failures, "\n".join(failures)

    def test_ads_network_failures(self) -> None:
        refused = self.run_call(self.error_operation, [httpx.ConnectError("connection refused")])
        assert isinstance(refused.error, TransientError), f"a refused connection must be TransientError, got {refused.error!r}"
        budget = Money(1234, self.account.currency) if self.account.currency != "KWD" else Money(12340, "KWD")
        lost = self.run_call(create_campaign(budget), [httpx.ReadTimeout("no answer")])
        assert isinstance(lost.error, Unconfirmed), f"a create whose answer was lost must be Unconfirmed, got {lost.error!r}"
        assert [request_line(r) for r in lost.sent] == [request_line(self.run_call(create_campaign(budget), self.echo_campaign(budget)).sent[0])]

    def test_ads_budgets_round_trip_exactly(self) -> None:
        for budget in ROUND_TRIP_BUDGETS:
            assert self.round_trip(budget) == budget, f"{budget} did not come back unchanged"

    def test_ads_platform_fields_cannot_carry_money(self) -> None:
        assert self.money_platform_field, "name one of the platform's money fields in `money_platform_field`"
        spec = AdSpec("campaign", "Kit campaign", daily_budget=ROUND_TRIP_BUDGETS[0], platform_fields={self.money_platform_field: "1"})
        account = AdAccountRef(self.account.external_id, "USD")
        outcome = self.run_call(lambda ads, ctx, acct: ads.create_object(ctx, acct, spec), [], account)
        assert isinstance(outcome.error, Rejected) and outcome.error.code == "PLATFORM_FIELD_NOT_ALLOWED", outcome.error
        assert outcome.sent == []

    def test_ads_unrepresentable_amounts_are_refused_before_sending(self) -> None:
        for budget in self.unrepresentable:
            account = AdAccountRef(self.account.external_id, budget.currency)
            outcome = self.run_call(create_campaign(budget), [], account)
            assert isinstance(outcome.error, AmountNotRepresentable), f"{budget}: expected AmountNotRepresentable, got {outcome.error!r}"
            assert outcome.sent == [], f"{budget}: {len(outcome.sent)} request(s) sent for an amount the platform cannot hold"

