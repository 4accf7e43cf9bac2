"""The provider calls one worker holds slots for: in all, per provider and per account.

A claim is only as large as the free slots (DESIGN.md §4.5): the scheduler takes a slot for each
target it claims, before the claim's call starts, and gives it back when the call ends. So a
claimed call never waits for a slot while its lease runs, and one busy account or provider
fills only its own slots: the next claim skips it and still finds an idle account's due post.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class CallSlots:
    total: int
    per_provider: int
    per_account: int
    held: int = 0
    providers: Counter[str] = field(default_factory=Counter)
    accounts: Counter[str] = field(default_factory=Counter)

    def free(self) -> int:
        return max(0, self.total - self.held)

    def fits(self, provider: str, account: str) -> bool:
        """Whether one more call for this provider and account may start now."""
        return self.held < self.total and self.providers[provider] < self.per_provider and self.accounts[account] < self.per_account

    def full_providers(self) -> set[str]:
        return {p for p, n in self.providers.items() if n >= self.per_provider}

    def full_accounts(self) -> set[str]:
        return {a for a, n in self.accounts.items() if n >= self.per_account}

    def take(self, provider: str, account: str) -> None:
        self.held += 1
        self.providers[provider] += 1
        self.accounts[account] += 1

    def give_back(self, provider: str, account: str) -> None:
        self.held -= 1
        for counts, key in ((self.providers, provider), (self.accounts, account)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]

    def copy(self) -> CallSlots:
        return CallSlots(self.total, self.per_provider, self.per_account, self.held, Counter(self.providers), Counter(self.accounts))


__all__ = ["CallSlots"]
