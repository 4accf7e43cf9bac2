"""Organizations: the tenant tree (one level of children), their status, kill switches and metadata.

Outside this wing, code imports from ``gateway.orgs`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

from gateway.orgs.metadata import merge_metadata, validate_metadata
from gateway.orgs.organizations import (
    change_status,
    create_child,
    create_organization,
    find_visible,
    find_visible_many,
    get_organization,
    list_children,
    set_kill_switch,
    update_organization,
)

__all__ = [
    "change_status",
    "create_child",
    "create_organization",
    "find_visible",
    "find_visible_many",
    "get_organization",
    "list_children",
    "merge_metadata",
    "set_kill_switch",
    "update_organization",
    "validate_metadata",
]
