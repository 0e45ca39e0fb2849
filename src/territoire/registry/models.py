"""Tables of the registry domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from territoire.db.base import Base, JSONType, UTCDateTime, utcnow


class Entity(Base):
    """An asset, device or place. The bounding box columns feed the spatial index:
    an R*Tree virtual table on SQLite, a GiST index on PostgreSQL (see the migration)."""

    __tablename__ = "entity"
    __table_args__ = (
        UniqueConstraint("tenant_id", "urn"),
        Index("ix_entity_tenant_type", "tenant_id", "type"),
        Index("ix_entity_tenant_commune", "tenant_id", "commune_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    urn: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    relationships: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    min_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    commune_id: Mapped[int | None] = mapped_column(
        ForeignKey("commune.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
