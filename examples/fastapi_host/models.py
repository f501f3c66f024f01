"""The host's own tables: who asked for a referral, and each command its users sent."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The host's metadata; the library's tables are not in it (they have their own history)."""


class ReferralRequest(Base):
    __tablename__ = "referral_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[str] = mapped_column(String(36), unique=True)
    requested_by: Mapped[str] = mapped_column(String(64))


class CommandLog(Base):
    """The host's own audit of what its users sent; kept only for commands that passed."""

    __tablename__ = "command_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[str] = mapped_column(String(36), index=True)
    command: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
