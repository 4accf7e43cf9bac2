"""What an operator sees and controls: the audit log of every mutation (who, what, on which
objects, how it ended, kept for a configured time), the kill switches an ``org:admin`` key turns
on its own keys and its children, and the health of the publishing machinery (accounts needing
attention, the queue, workers' heartbeats, failed jobs).

The GraphQL side (``schema.audit``) records every mutation generically; this wing holds the rows
and the rules.
"""
