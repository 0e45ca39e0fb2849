"""Database layer: engine, metadata, migrations and dialect helpers."""

from territoire.db.base import Base, utcnow
from territoire.db.engine import Database

__all__ = ["Base", "Database", "utcnow"]
