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
    UniqueConstraint,
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
# Time alone: the start-up replay of recent hours, retention. (An index on device and time
# served no query and cost an insert per row: dropped in 0006.)
Index("ix_observations_ts", observations.c.ts_ms)

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

# Deduplication of broker redeliveries (docs/ingest.md): one row per committed batch of a
# session, listing each message's packet id and content digest in commit order. One row per
# batch rather than per message: the per-message upsert cost about 5 us of the ~30 us a
# message took to commit (docs/performance.md).
ingest_batches = Table(
    "ingest_batches", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("last_seq", BigInteger, primary_key=True, autoincrement=False,
           comment="commit order within the session of the batch's last message"),
    Column("first_seq", BigInteger, nullable=False),
    Column("entries", LargeBinary, nullable=False,
           comment="per message: packet id (2 bytes, big-endian) + digest (16 bytes)"),
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
Index("ix_audit_at", audit_log.c.at_ms)

consent_changes = Table(
    "consent_changes", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("kinds", JSON, nullable=False, comment="data kinds consented to"),
    Column("at_ms", BigInteger, nullable=False),
    Column("by_staff", String(64), nullable=False),
)
Index("ix_consent_changes_resident", consent_changes.c.resident_id, consent_changes.c.id)

# Scale-out (docs/scale.md): workers holding MQTT session slots and resident partitions.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True, comment="slot:<n> or part:<n>"),
    Column("holder", String(128), nullable=False, comment="worker id"),
    Column("expires_ms", BigInteger, nullable=False),
    Column("acquired_ms", BigInteger, nullable=False),
)

workers = Table(
    "workers", metadata,
    Column("id", String(128), primary_key=True),
    Column("heartbeat_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("api", String(256), nullable=True, comment="where its API listens, for operators"),
)

# Failed password logins, shared by every worker so that the login limit holds for the
# site, not per process: one row per failure and key, kept only for the login window.
login_failures = Table(
    "login_failures", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("key", String(200), nullable=False, comment="s:<staff id> or a:<client address>"),
    Column("at_ms", BigInteger, nullable=False),
)
Index("ix_login_failures_key", login_failures.c.key, login_failures.c.at_ms)
Index("ix_login_failures_at", login_failures.c.at_ms)

staff_passwords = Table(
    "staff_passwords", metadata,
    Column("staff_id", String(64), primary_key=True),
    Column("hash", String(255), nullable=False, comment="scrypt$N$r$p$salt$digest"),
    Column("updated_ms", BigInteger, nullable=False),
)

# --- alerting (issue 3) ------------------------------------------------------------------

alerts = Table(
    "alerts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("key", String(160), nullable=False, comment="condition; one unresolved per key"),
    Column("status", String(16), nullable=False, comment="open, acknowledged, resolved"),
    Column("escalated", Boolean, nullable=False, default=False),
    Column("condition_cleared", Boolean, nullable=False, default=False),
    Column("device_id", String(64), nullable=True),
    Column("room", String(64), nullable=True),
    Column("during_visit", String(64), nullable=True, comment="staff id if during a visit"),
    Column("detail", JSON, nullable=True),
    Column("event_ms", BigInteger, nullable=False, comment="when the condition arose"),
    Column("raised_ms", BigInteger, nullable=False),
    Column("escalation_due_ms", BigInteger, nullable=False),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_ms", BigInteger, nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("resolved_ms", BigInteger, nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("centre_status", String(16), nullable=True,
           comment="SCAIP hand-off: sending, accepted, rejected, busy, unreachable"),
    Column("centre_detail", String(120), nullable=True),
)
Index("ix_alerts_status", alerts.c.status, alerts.c.escalation_due_ms)
Index("ix_alerts_resident", alerts.c.resident_id, alerts.c.raised_ms)
Index("ix_alerts_key", alerts.c.key, alerts.c.status)

# Every transition; the id is the server-sent-event id (resumable with Last-Event-ID).
alert_events = Table(
    "alert_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("alert_id", BigInteger, nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("transition", String(24), nullable=False),
    Column("by", String(64), nullable=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("note", Text, nullable=True),
)
Index("ix_alert_events_alert", alert_events.c.alert_id)

visits = Table(
    "visits", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("staff_id", String(64), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=True),
)
Index("ix_visits_resident", visits.c.resident_id, visits.c.start_ms)

# --- digital night supervision (issue 4) -------------------------------------------------

# The supervision journal: one row per evaluation of a check (attempt 1, and the re-check
# of an `unknown`). Never updated except to link the alert it raised.
supervision_checks = Table(
    "supervision_checks", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("night", String(10), nullable=False, comment="evening the night starts, ISO date"),
    Column("due_ms", BigInteger, nullable=False, comment="planned check time"),
    Column("attempt", Integer, nullable=False, comment="1, or 2 for the re-check"),
    Column("evaluated_ms", BigInteger, nullable=False, comment="on the resident's clock"),
    Column("recorded_ms", BigInteger, nullable=False, comment="wall clock"),
    Column("outcome", String(16), nullable=False, comment="ok, attention, unknown"),
    Column("late", Boolean, nullable=False, default=False),
    Column("final", Boolean, nullable=False, default=True),
    Column("recheck_ms", BigInteger, nullable=True),
    Column("replaces_visit", Boolean, nullable=False, default=False),
    Column("reasons", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("alert_id", BigInteger, nullable=True),
    UniqueConstraint("resident_id", "due_ms", "attempt", name="uq_supervision_check"),
)
Index("ix_supervision_checks_unit_night", supervision_checks.c.unit_id,
      supervision_checks.c.night)

# Plans changed through the API; they override the registry's plan for that resident.
supervision_plans = Table(
    "supervision_plans", metadata,
    Column("resident_id", String(64), primary_key=True),
    Column("plan", JSON, nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_ms", BigInteger, nullable=False),
)

# --- IBIC goals and follow-up (issue 5) --------------------------------------------------

# Goals created or changed through the API; they override the registry's goal of that id.
goals = Table(
    "goals", metadata,
    Column("resident_id", String(64), primary_key=True),
    Column("goal_id", String(64), primary_key=True),
    Column("goal", JSON, nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_ms", BigInteger, nullable=False),
)

# Needs per life area changed through the API (override the registry's list).
resident_needs = Table(
    "resident_needs", metadata,
    Column("resident_id", String(64), primary_key=True),
    Column("needs", JSON, nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_ms", BigInteger, nullable=False),
)

# A goal's history: created/updated through the API, follow-up proposed by the gateway,
# confirmed or overridden by a person. Rows are never changed.
goal_events = Table(
    "goal_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("goal_id", String(64), nullable=False),
    Column("event", String(16), nullable=False,
           comment="created, updated, proposed, confirmed, overridden"),
    Column("status", String(24), nullable=True,
           comment="achieved, partly_achieved, not_achieved (or null: no proposal)"),
    Column("by", String(64), nullable=False, comment="staff id, or 'gateway'"),
    Column("at_ms", BigInteger, nullable=False),
    Column("comment", Text, nullable=True),
    Column("evidence", JSON, nullable=True),
)
Index("ix_goal_events_goal", goal_events.c.resident_id, goal_events.c.goal_id,
      goal_events.c.at_ms)

risk_days = Table(
    "risk_days", metadata,
    Column("resident_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True, comment="YYYY-MM-DD local"),
    Column("features", JSON, nullable=False),
    Column("status", String(24), nullable=False,
           comment="features, scored, insufficient_data, no_model"),
    Column("inputs", JSON, nullable=True),
    Column("probability", Float, nullable=True),
    Column("level", String(16), nullable=True),
    Column("factors", JSON, nullable=True),
    Column("model_version", String(64), nullable=True),
    Column("computed_ms", BigInteger, nullable=False),
)

# --- occupancy and planned absences (issue 21) --------------------------------------------

# What the detectors learnt and must keep over a restart (their replay covers 12 hours):
# occupancy changes (value {state, source}) and each night's rise time (value {night}).
detector_facts = Table(
    "detector_facts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False, comment="occupancy, rise"),
    Column("ts_ms", BigInteger, nullable=False, comment="event time the fact holds from"),
    Column("value", JSON, nullable=False),
    Column("recorded_ms", BigInteger, nullable=False),
    UniqueConstraint("resident_id", "kind", "ts_ms", name="uq_detector_fact"),
)
Index("ix_detector_facts_resident", detector_facts.c.resident_id, detector_facts.c.kind,
      detector_facts.c.ts_ms)

# Planned absences added through the API (the registry's are in the registry). Deleting one
# marks it deleted, so who planned and who withdrew an absence stays known.
absences = Table(
    "absences", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("resident_id", String(64), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("reason", String(200), nullable=False, default=""),
    Column("created_by", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("deleted_by", String(64), nullable=True),
    Column("deleted_ms", BigInteger, nullable=True),
)
Index("ix_absences_resident", absences.c.resident_id, absences.c.end_ms)

# --- Web Push (issue 23) ----------------------------------------------------------------------

# A phone's push subscription, bound to the staff member who made it. The endpoint is the
# push service's URL for that browser; p256dh and auth are its keys (the push service sees
# only ciphertext).
push_subscriptions = Table(
    "push_subscriptions", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("staff_id", String(64), nullable=False),
    Column("endpoint", String(1024), nullable=False, unique=True),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_sent_ms", BigInteger, nullable=True),
    Column("failures", Integer, nullable=False, default=0),
)
Index("ix_push_subscriptions_staff", push_subscriptions.c.staff_id)

# --- SCAIP hand-off to alarm receiving centres (docs/alarm-centre.md) --------------------

scaip_messages = Table(
    "scaip_messages", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("centre_id", String(32), nullable=False),
    Column("alert_id", BigInteger, nullable=False),
    Column("alert_event_id", BigInteger, nullable=False),
    Column("transition", String(24), nullable=False),
    Column("mty", String(2), nullable=False),
    Column("ref", String(32), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_try_ms", BigInteger, nullable=False),
    Column("last_code", Integer, nullable=True),
    Column("last_snu", Integer, nullable=True),
    Column("last_reason", String(200), nullable=True),
    Column("accepted_ms", BigInteger, nullable=True),
)
Index("ix_scaip_messages_pending", scaip_messages.c.centre_id, scaip_messages.c.accepted_ms,
      scaip_messages.c.id)
Index("ix_scaip_messages_alert", scaip_messages.c.alert_id)

scaip_cursor = Table(
    "scaip_cursor", metadata,
    Column("centre_id", String(32), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False),
)
