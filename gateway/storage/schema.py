"""Database tables (SQLAlchemy Core). Times are UTC epoch milliseconds: portable and fast."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

observations = Table(
    "observations", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", JSON, nullable=True),
    Column("ts_ms", BigInteger, nullable=False, comment="event time (device, if trusted)"),
    Column("received_ms", BigInteger, nullable=False),
    Column("room", String(64), nullable=True),
    Column("clock_override", Boolean, nullable=False, default=False,
           comment="device time was implausible and replaced by receive time"),
)
Index("ix_observations_resident_ts", observations.c.resident_id, observations.c.ts_ms)
Index("ix_observations_device_ts", observations.c.device_id, observations.c.ts_ms)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_size", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("device_id", String(64), nullable=True),
    Column("partial", Boolean, nullable=False, default=False,
           comment="some readings of the message were still stored"),
    Column("received_ms", BigInteger, nullable=False),
)
Index("ix_dead_letters_received", dead_letters.c.received_ms)

# Deduplication of broker redeliveries: one row per (session, packet id), see docs/ingest.md.
ingest_inflight = Table(
    "ingest_inflight", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("mid", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False, comment="commit order within the session"),
    Column("committed_ms", BigInteger, nullable=False),
)

device_status = Table(
    "device_status", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("resident_id", String(64), nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("battery", Float, nullable=True),
    Column("linkquality", Integer, nullable=True),
    Column("availability", String(16), nullable=True),
)

settings = Table(
    "settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("staff_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("resident_id", String(64), nullable=True),
    Column("detail", Text, nullable=True),
)
Index("ix_audit_resident", audit_log.c.resident_id, audit_log.c.at_ms)
