"""Metrics: every published post's figures over time, collected on an age-based cadence.

``cadence`` says when a post is read next; ``collector`` is the loop the roof starts beside the
scheduler (reads due targets batched per account and provider, pauses an account's metric reads
on a rate limit, runs ``refreshMetrics`` jobs); ``records`` writes the append-only snapshots and
each target's latest figures; ``retention`` thins old snapshots; ``reads`` and ``analytics``
answer the API (series, rollups, top posts, best times); ``refresh`` holds the command.
A figure the platform did not report is NULL all the way through, never 0.
"""
