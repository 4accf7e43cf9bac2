"""Connected platform identities: accounts and their sealed credentials, OAuth handshakes that become accounts, and token refresh.

Outside this wing, code imports from ``gateway.accounts`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

from gateway.accounts.accounts import (
    ACCOUNT_STATUSES,
    AccountFilter,
    connect_fingerprint,
    disconnect_account,
    find_account,
    list_accounts,
    open_credentials,
    require_provider,
    save_account,
    shown_accounts,
    update_account,
    verify_credentials,
)
from gateway.accounts.choices import ChoicesUnavailable, SettingChoices, setting_choices
from gateway.accounts.oauth import (
    FAILED,
    PENDING,
    SUCCEEDED,
    StartedConnection,
    callback_url,
    complete_connection,
    connection_state,
    find_connection,
    purge_connections,
    redirect_uris_of,
    set_redirect_uris,
    start_connection,
)
from gateway.accounts.tokens import refresh_account_token, refresh_expiring

__all__ = [
    "ACCOUNT_STATUSES",
    "AccountFilter",
    "callback_url",
    "ChoicesUnavailable",
    "SettingChoices",
    "setting_choices",
    "complete_connection",
    "connect_fingerprint",
    "connection_state",
    "disconnect_account",
    "FAILED",
    "find_account",
    "find_connection",
    "list_accounts",
    "open_credentials",
    "PENDING",
    "purge_connections",
    "redirect_uris_of",
    "refresh_account_token",
    "refresh_expiring",
    "require_provider",
    "save_account",
    "set_redirect_uris",
    "shown_accounts",
    "start_connection",
    "StartedConnection",
    "SUCCEEDED",
    "update_account",
    "verify_credentials",
]
