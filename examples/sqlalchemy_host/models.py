"""The host's own tables: care tasks its coordinators work through, one per pathway step."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The host's metadata; the library's tables are not in it (they have their own history)."""


class CareTask(Base):
    __tablename__ = "care_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[str] = mapped_column(String(36), index=True)
    title: Mapped[str] = mapped_column(String(200))
