from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.db import NOW, Base, UTCDateTime

if TYPE_CHECKING:
    from domain.models.tracker import Experiment

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGSERIAL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Profile(Base):
    __tablename__ = "profiles"
    # Prefix searches (`dbjobs profiles list --username ada`) use these on PostgreSQL, whatever
    # its collation; the unique indexes serve equality.
    __table_args__ = (
        Index(
            "ix_profiles_username_pattern",
            "username",
            postgresql_ops={"username": "text_pattern_ops"},
        ),
        Index("ix_profiles_email_pattern", "email", postgresql_ops={"email": "text_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    bio: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    experiments: Mapped[list[Experiment]] = relationship(
        back_populates="owner", lazy="raise", passive_deletes=True
    )
