"""Persistence: the async engine and sessions, the table models, and the migrations."""

from gateway.storage.database import Database

__all__ = ["Database"]
