"""Saying why the database cannot be reached, in words an operator can act on, without its password.

Why: the first connection is where most deployment mistakes show (a server that is not running, a
database nobody created, a wrong user), and what the driver raises then is a traceback through
SQLAlchemy and asyncpg. Every message names the database by its URL with the password masked:
a connection string often carries one, and messages end up in terminals, logs and tickets.
"""

from __future__ import annotations

import re
import socket

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

# ``scheme://user:password@`` in free text: the password is replaced, the rest kept.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*):(?P<password>[^/@\s]*)@")
MASK = "***"

# PostgreSQL's SQLSTATEs for the mistakes made at the first connection.
UNKNOWN_DATABASE = "3D000"
UNKNOWN_ROLE = "28000"
WRONG_PASSWORD = "28P01"


class DatabaseUnreachable(Exception):
    """The database could not be connected to; the message says which one, why, and what to do."""


def mask_passwords(text: str) -> str:
    """``text`` with the password of every URL in it masked."""
    return _CREDENTIALS.sub(lambda match: f"{match['head']}:{MASK}@", text)


def masked_url(url: str | URL) -> str:
    """A database URL as it may be shown: SQLAlchemy's rendering with the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL SQLAlchemy parses: mask what looks like one
        return mask_passwords(str(url))


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error, looked up through SQLAlchemy's and the adapter's wrapping."""
    seen: BaseException | None = error.orig if isinstance(error, DBAPIError) else error
    while seen is not None:
        if state := getattr(seen, "sqlstate", None):
            return str(state)
        seen = seen.__cause__
    return None


def _reason(error: BaseException) -> str:
    text = str(error.orig if isinstance(error, DBAPIError) and error.orig is not None else error)
    return mask_passwords(text.splitlines()[0] if text else type(error).__name__)


def describe_unreachable(url: str | URL, error: BaseException) -> str:
    """Why connecting to ``url`` failed with ``error``, and how to fix it."""
    parsed = make_url(url)
    host, port = parsed.host or "localhost", parsed.port or 5432
    where = f"cannot reach the database {masked_url(parsed)}"
    state = _sqlstate(error)
    if state == UNKNOWN_DATABASE:
        return (
            f"{where}: the server at {host}:{port} has no database named {parsed.database!r}. Create it, e.g. "
            f"`createdb -h {host} -p {port} -U {parsed.username or 'postgres'} {parsed.database}` "
            f"(or `CREATE DATABASE \"{parsed.database}\";` in psql as a user allowed to), "
            "then run `socialgate migrate`."
        )
    if state in (UNKNOWN_ROLE, WRONG_PASSWORD):
        return (
            f"{where}: the server at {host}:{port} refused user {parsed.username!r} ({_reason(error)}). "
            "Check the user and password in SOCIALGATE_DATABASE_URL."
        )
    if isinstance(error, socket.gaierror):
        return f"{where}: the host name {host!r} does not resolve. Check the host in SOCIALGATE_DATABASE_URL."
    if isinstance(error, (ConnectionError, TimeoutError, OSError)) and parsed.get_backend_name() != "sqlite":
        return (
            f"{where}: nothing answers at {host}:{port} ({_reason(error)}). "
            "Is the database server running and listening on that address?"
        )
    return f"{where}: {_reason(error)}"
