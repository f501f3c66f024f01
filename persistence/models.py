"""The tables: `pathways` (one row per pathway, the current head), `entries` (the log),
`outbox` (one row per entry, marked when a host handler has taken it), `policies` (the
policy registry) and `fact_series` (the values of growing series, outside the snapshot).

The migration in persistence/migrations is the source of truth for the database; these
models describe the same schema for queries and for Alembic's autogenerate, and a test
checks that the two never drift apart. Enum-valued columns are plain strings holding the
enum's value, so that adding a value to the vocabulary needs no schema change.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from persistence.types import UTCDateTime
from states.entry import ORIGIN_LENGTH
from states.vocabulary import CLOSED_PHASES

# A pathway outside the closed phases is open; a patient has at most one open pathway
# without a successor (the partial unique index of migrations 0003 and 0005, which spell the
# same list).
OPEN_WHERE = "phase NOT IN (" + ", ".join(f"'{p.value}'" for p in sorted(CLOSED_PHASES)) + ") AND successor IS NULL"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column widths, exported so command models can refuse an over-long value before it reaches
# PostgreSQL (which enforces them; SQLite does not).
ID_LENGTH = 36
PATIENT_REF_LENGTH = 64
ENUM_LENGTH = 32
TRIGGER_LENGTH = 64
ACTOR_ID_LENGTH = 128
POLICY_VERSION_LENGTH = 128
IDEMPOTENCY_KEY_LENGTH = 200
HASH_LENGTH = 64
RELEASE_LENGTH = 64
TOPIC_LENGTH = ENUM_LENGTH + 1 + TRIGGER_LENGTH  # "<entry kind>.<trigger>"
ERROR_NAME_LENGTH = 128


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PathwayRow(Base):
    """The current state of one pathway; `version` and `head_hash` guard concurrent writers."""

    __tablename__ = "pathways"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_pathways_phase", "phase"),
        Index("ix_pathways_patient_ref", "patient_ref"),  # lookups by patient (the one below is partial)
        Index("ix_pathways_created_at_id", "created_at", "id"),  # listings, in creation order (0010)
        Index(
            "uq_pathways_open_patient",
            "patient_ref",
            unique=True,
            sqlite_where=text(OPEN_WHERE),
            postgresql_where=text(OPEN_WHERE),
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    patient_ref: Mapped[str] = mapped_column(String(PATIENT_REF_LENGTH))
    route: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    donor_type: Mapped[str | None] = mapped_column(String(ENUM_LENGTH))
    graft_source: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    hct_number: Mapped[int] = mapped_column(Integer)
    previous_pathway: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("pathways.id"))
    # The linked subsequent-transplant pathway. Deferred to commit, so the old pathway can be
    # marked before the new one is inserted (the open-pathway index sees it closed by then).
    successor: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("pathways.id", deferrable=True, initially="DEFERRED")
    )
    phase: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    facts: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The milestone schedule the facts give (states/milestones.py, `Schedule.dumps`), written
    # with them; derived, outside the hash chain. NULL: compute it from the facts (migration 0008).
    schedule: Mapped[str | None] = mapped_column(Text)


class EntryRow(Base):
    """One sealed log line. `id` is storage only: order and chain follow `sequence`.

    The unique (pathway_id, sequence) constraint is also the index that serves reading a
    pathway's log in order, and the losing side of a race on the same sequence number.
    """

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("pathway_id", "sequence"),
        UniqueConstraint("idempotency_key"),
        CheckConstraint("sequence >= 1", name="sequence_positive"),
        # `hsct audit log --since/--until` reads through it; no query reads by actor or
        # trigger alone, so those have no index (migration 0006 dropped them).
        Index("ix_entries_recorded_at", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    pathway_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("pathways.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    trigger: Mapped[str] = mapped_column(String(TRIGGER_LENGTH))
    from_phase: Mapped[str | None] = mapped_column(String(ENUM_LENGTH))
    to_phase: Mapped[str | None] = mapped_column(String(ENUM_LENGTH))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[str] = mapped_column(String(ACTOR_ID_LENGTH))
    actor_role: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    reasons: Mapped[str] = mapped_column(Text)
    policy_version: Mapped[str] = mapped_column(String(POLICY_VERSION_LENGTH))
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_LENGTH))
    corrects: Mapped[int | None] = mapped_column(Integer)
    facts_digest: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    origin: Mapped[str | None] = mapped_column(String(ORIGIN_LENGTH))
    release: Mapped[str | None] = mapped_column(String(RELEASE_LENGTH))
    form: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class FactSeriesRow(Base):
    """One value of a growing series (a lab value, a transfusion), outside the snapshot text,
    which commits to the series by its length and running hash (persistence/series.py)."""

    __tablename__ = "fact_series"

    pathway_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("pathways.id"), primary_key=True)
    field: Mapped[str] = mapped_column(String(ENUM_LENGTH), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[str] = mapped_column(Text)


class OutboxRow(Base):
    """A committed entry a host may want to hear about, written in the entry's transaction.

    Not append-only: the dispatcher sets `delivered_at` once a handler has taken the row and
    counts `attempts` (failed and successful handler calls); `last_error` is the class name of
    the last handler exception, never its message. The partial index holds only pending rows,
    so finding what to deliver stays cheap however many rows were delivered.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("pathway_id", "sequence"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(
            "ix_outbox_pending",
            "pathway_id",
            "sequence",
            sqlite_where=text("delivered_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    pathway_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("pathways.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    topic: Mapped[str] = mapped_column(String(TOPIC_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_NAME_LENGTH))


class PolicyRow(Base):
    """The policy registry: each policy version's full content, stored once (migration 0004).

    Append-only like `entries` (triggers refuse UPDATE and DELETE): an entry's
    `policy_version` names a row here, whose `content` is the policy's canonical JSON
    (`Policy.canonical_json`), so the rules that judged any entry can be read back.
    """

    __tablename__ = "policies"

    version: Mapped[str] = mapped_column(String(POLICY_VERSION_LENGTH), primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(HASH_LENGTH))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    release: Mapped[str] = mapped_column(String(RELEASE_LENGTH))


pathways_table = cast("Table", PathwayRow.__table__)
entries_table = cast("Table", EntryRow.__table__)
outbox_table = cast("Table", OutboxRow.__table__)
fact_series_table = cast("Table", FactSeriesRow.__table__)
policies_table = cast("Table", PolicyRow.__table__)
