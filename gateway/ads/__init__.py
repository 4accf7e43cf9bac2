"""Ads: ad accounts reached through connected accounts, their campaigns, ad sets and ads, writes
run as jobs against the platform (the source of truth), the organization's daily spend caps,
sync with drift recorded, daily insights with exact CPM/CPC/CTR, and the ``ads.*`` events.

Money is ``providers.Money`` (integer minor units by ISO 4217) everywhere; ``gateway.ads.money``
turns API input into it and formats it for people.
"""
