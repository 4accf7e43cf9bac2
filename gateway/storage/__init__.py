"""Persistence: the async engine and sessions, the table models, the migrations, the credential vault, plugins' record store, idempotency records and private file modes. It imports only `core`."""

from gateway.storage.database import Database

__all__ = ["Database"]
