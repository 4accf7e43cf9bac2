"""Approvals: an organization's approval policy (a sub-org inherits its parent's), each post's
approval state and comment thread, the predicate the engine's claim uses so that no target of an
unapproved post is ever published, and the signed preview links a client approves through.

Modules: ``policy`` (the policy and its inheritance), ``gate`` (what a new or edited post needs,
and the claim's SQL predicate), ``reviews`` (submit, approve, reject, comment), ``previews``
(signed, expiring links to a read-only review page).
"""
