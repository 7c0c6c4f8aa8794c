"""Alert lifecycle: open -> acknowledged -> resolved, escalation, dedup, every step stored.

One unresolved alert per condition key (dedup); a condition that recurs after its alert
was resolved opens a new one. Every transition is a row in `alert_events`, whose id is the
server-sent-event id, so a reconnecting phone resumes exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from detectors.model import Decision
from gateway.config.registry import Registry
from gateway.errors import TillsynError
from gateway.storage.schema import alert_events, alerts, visits
from gateway.storage.store import Store, now_ms, to_ms

log = logging.getLogger(__name__)

OUTCOMES = ("visited", "called", "no_action_needed", "false_alarm", "technical")
NOTE_NEEDED = frozenset({"false_alarm", "technical"})  # say what happened
UNDO_SECONDS = 10


class AlertError(TillsynError):
    """A transition that is not allowed (unknown alert, wrong state, bad outcome)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Broadcast:
    """Wakes server-sent-event streams (asyncio) from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def listen(self) -> asyncio.Event:
        """Register the calling coroutine's loop; returns the event to wait on."""
        ev = asyncio.Event()
        with self._lock:
            self._listeners.append((asyncio.get_running_loop(), ev))
        return ev

    def forget(self, ev: asyncio.Event) -> None:
        """Unregister."""
        with self._lock:
            self._listeners = [(lp, e) for lp, e in self._listeners if e is not ev]

    def notify(self) -> None:
        """Wake every stream."""
        with self._lock:
            listeners = list(self._listeners)
        for loop, ev in listeners:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:
                self.forget(ev)


Publish = Callable[[str, dict[str, Any]], None]
# Alerts for day staff (never a night wake-up): escalated only if a whole day passes.
DAY_KINDS = frozenset({"fall_risk_rise"})
DAY_ESCALATION_S = 24 * 3600


class AlertService:
    """Creates, transitions and delivers alerts."""

    def __init__(self, store: Store, registry: Registry, *, escalation_seconds: int,
                 publish: Publish | None = None) -> None:
        self.store = store
        self.registry = registry
        self.default_escalation_s = escalation_seconds
        self.publish = publish
        # Also told of every delivered transition (the Web Push sender): (alert, transition).
        self.listeners: list[Callable[[dict[str, Any], str], None]] = []
        self.broadcast = Broadcast()
        self._lock = threading.RLock()
        self._residents = {r.id: r for r in registry.residents}
        self._units = {u.id: u for u in registry.units}
        # While detectors are rebuilt from stored observations after a restart, a raise is
        # skipped if an alert for the same condition already covers its event time.
        # Open, not yet escalated alerts as last delivered: if the database is unreachable
        # when one falls due, its escalation is still sent, from here.
        self._watch: dict[int, dict[str, Any]] = {}
        self._escalated_from_memory: set[int] = set()

    # --- raising ----------------------------------------------------------------------------

    def _escalation_s(self, resident_id: str) -> int:
        res = self._residents.get(resident_id)
        if res is not None and res.alerts.escalation_seconds is not None:
            return res.alerts.escalation_seconds  # the site's otherwise (config/resident.py)
        return self.default_escalation_s

    def handle(self, decisions: list[Decision], *, replay: bool = False) -> list[int]:
        """Apply detector decisions (`replay`: from the rebuild after a restart); returns
        ids of alerts opened."""
        opened = []
        for d in decisions:
            if d.resident_id not in self._residents:
                continue
            if d.action == "raise":
                alert_id = self.raise_alert(d, replay=replay)
                if alert_id is not None:
                    opened.append(alert_id)
            else:
                self._condition_cleared(d)
        return opened

    def raise_alert(self, d: Decision, *, replay: bool = False) -> int | None:
        """Open an alert unless one for the same condition is still unresolved; a more
        urgent raise of an unresolved condition raises its priority instead. A replayed
        decision is skipped when an alert of the same condition was raised for it or for
        something later."""
        res = self._residents[d.resident_id]
        key = condition_key(d)
        now = now_ms()
        with self._lock, self.store.engine.begin() as conn:
            existing = conn.execute(
                select(alerts.c.id, alerts.c.priority, alerts.c.unit_id, alerts.c.detail)
                .where(alerts.c.key == key).where(alerts.c.status != "resolved")).first()
            if existing is not None:
                if d.priority >= existing.priority:
                    return None
                upgraded = self._raise_priority(conn, existing, d, now)
            else:
                upgraded = None
                event_ms = to_ms(d.ts)
                if replay:
                    covered = conn.execute(
                        select(alerts.c.id).where(alerts.c.key == key)
                        .where(alerts.c.event_ms >= event_ms)).first()
                    if covered is not None:
                        return None
                device = next((dev for dev in res.devices if dev.id == d.device_id), None)
                alert_id = int(conn.execute(insert(alerts).values(
                    resident_id=d.resident_id, unit_id=res.unit, kind=d.kind,
                    priority=d.priority, key=key, status="open",
                    escalated=False, condition_cleared=False, device_id=d.device_id,
                    room=device.room if device else d.detail.get("room"),
                    during_visit=d.detail.get("during_visit"), detail=d.detail,
                    event_ms=event_ms, raised_ms=now,
                    escalation_due_ms=now + (DAY_ESCALATION_S if d.kind in DAY_KINDS
                                             else self._escalation_s(d.resident_id)) * 1000,
                )).inserted_primary_key[0])
                self._event(conn, alert_id, res.unit, "raised", None, now)
        if upgraded is not None:
            log.info("alert %s: priority raised to %s (%s)", upgraded, d.priority, d.kind)
            self._deliver(upgraded, "priority_raised")
            return None
        log.info("alert %s raised: %s for %s (priority %s)", alert_id, d.kind, d.resident_id,
                 d.priority)
        self._deliver(alert_id, "raised")
        return alert_id

    def _raise_priority(self, conn: Connection, row: Any, d: Decision, now: int) -> int:
        """The same condition has become more urgent (a bed exit with no movement since):
        the open alert takes the higher priority and the new evidence, as a stored step."""
        detail = {**(row.detail or {}), **d.detail, "priority_raised_at": d.ts.isoformat()}
        conn.execute(update(alerts).where(alerts.c.id == row.id)
                     .values(priority=d.priority, detail=detail))
        self._event(conn, int(row.id), row.unit_id, "priority_raised", None, now,
                    f"priority {row.priority} -> {d.priority}")
        return int(row.id)

    def _condition_cleared(self, d: Decision) -> None:
        with self._lock, self.store.engine.begin() as conn:
            row = conn.execute(
                select(alerts.c.id, alerts.c.unit_id).where(alerts.c.key == condition_key(d))
                .where(alerts.c.status != "resolved")).first()
            if row is None:
                return
            conn.execute(update(alerts).where(alerts.c.id == row.id)
                         .values(condition_cleared=True))
            self._event(conn, int(row.id), row.unit_id, "condition_cleared", None, now_ms())
        self._deliver(int(row.id), "condition_cleared")

    def unit_of(self, alert_id: int) -> str | None:
        """The unit an alert belongs to (None: no such alert)."""
        with self.store.engine.connect() as conn:
            unit = conn.execute(select(alerts.c.unit_id).where(alerts.c.id == alert_id)
                                ).scalar()
        return None if unit is None else str(unit)

    # --- staff actions ----------------------------------------------------------------------

    def acknowledge(self, alert_id: int, staff_id: str) -> dict[str, Any]:
        """open -> acknowledged."""
        return self._transition(alert_id, staff_id, "acknowledged", {"open"})

    def resolve(self, alert_id: int, staff_id: str, outcome: str,
                note: str | None = None) -> dict[str, Any]:
        """open/acknowledged -> resolved with an outcome."""
        if outcome not in OUTCOMES:
            raise AlertError(422, f"outcome must be one of {', '.join(OUTCOMES)}")
        if outcome in NOTE_NEEDED and not (note or "").strip():
            raise AlertError(422, f"note: say what happened when the outcome is {outcome}")
        return self._transition(alert_id, staff_id, "resolved", {"open", "acknowledged"},
                                outcome, note)

    def unacknowledge(self, alert_id: int, staff_id: str) -> dict[str, Any]:
        """acknowledged -> open again: a mistaken tap, undone by the same person within
        UNDO_SECONDS (the escalation clock runs on as if it had not happened)."""
        now = now_ms()
        with self._lock, self.store.engine.begin() as conn:
            row = conn.execute(select(alerts.c.status, alerts.c.unit_id,
                                      alerts.c.acknowledged_by, alerts.c.acknowledged_ms)
                               .where(alerts.c.id == alert_id)).first()
            if row is None:
                raise AlertError(404, "no such alert")
            if row.status != "acknowledged" or row.acknowledged_by != staff_id:
                raise AlertError(409, "only your own acknowledgement can be undone")
            if now - int(row.acknowledged_ms or 0) > UNDO_SECONDS * 1000:
                raise AlertError(409, f"an acknowledgement can be undone for {UNDO_SECONDS} s")
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(
                status="open", acknowledged_by=None, acknowledged_ms=None))
            self._event(conn, alert_id, row.unit_id, "ack_undone", staff_id, now)
        return self._deliver(alert_id, "ack_undone")

    def _transition(self, alert_id: int, staff_id: str, to: str, allowed: set[str],
                    outcome: str | None = None, note: str | None = None) -> dict[str, Any]:
        now = now_ms()
        with self._lock, self.store.engine.begin() as conn:
            row = conn.execute(select(alerts.c.status, alerts.c.unit_id)
                               .where(alerts.c.id == alert_id)).first()
            if row is None:
                raise AlertError(404, "no such alert")
            if row.status not in allowed:
                raise AlertError(409, f"alert is {row.status}; cannot become {to}")
            values: dict[str, Any] = {"status": to}
            if to == "acknowledged":
                values.update(acknowledged_by=staff_id, acknowledged_ms=now)
            else:
                values.update(resolved_by=staff_id, resolved_ms=now, outcome=outcome)
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
            self._event(conn, alert_id, row.unit_id, to, staff_id, now, note)
        return self._deliver(alert_id, to)

    # --- escalation -----------------------------------------------------------------------

    def escalate_due(self, at_ms: int | None = None) -> list[int]:
        """Escalate open alerts past their escalation time (also those that fell due while
        the gateway was down). With the database unreachable, alerts already known in
        memory are escalated from memory, and stored once the database is back."""
        at_ms = now_ms() if at_ms is None else at_ms
        done = []
        try:
            with self._lock, self.store.engine.begin() as conn:
                rows = conn.execute(
                    select(alerts.c.id, alerts.c.unit_id).where(alerts.c.status == "open")
                    .where(alerts.c.escalated.is_(False))
                    .where(alerts.c.escalation_due_ms <= at_ms)).all()
                for row in rows:
                    # Conditional: with several workers only the one whose update flips
                    # the flag escalates (PostgreSQL re-checks the condition after a
                    # concurrent update of the row).
                    flipped = conn.execute(
                        update(alerts).where(alerts.c.id == row.id)
                        .where(alerts.c.status == "open")
                        .where(alerts.c.escalated.is_(False)).values(escalated=True))
                    if flipped.rowcount != 1:
                        continue
                    self._event(conn, int(row.id), row.unit_id, "escalated", None, at_ms)
                    done.append(int(row.id))
        except SQLAlchemyError as exc:
            return self._escalate_from_memory(at_ms, exc)
        for alert_id in done:
            if alert_id in self._escalated_from_memory:
                self._escalated_from_memory.discard(alert_id)
                log.info("alert %s: escalation sent during the outage now stored", alert_id)
                self._deliver(alert_id, "escalated", publish=False)
                continue
            log.warning("alert %s escalated: not acknowledged in time", alert_id)
            self._deliver(alert_id, "escalated")
        return done

    def _escalate_from_memory(self, at_ms: int, exc: Exception) -> list[int]:
        due = [a for a in list(self._watch.values())
               if a["escalation_due_ms"] <= at_ms and a["id"] not in self._escalated_from_memory]
        if not due:
            raise exc
        for a in due:
            log.error("alert %s escalated from memory: database unreachable (%s); it is "
                      "stored when the database is back", a["id"], type(exc).__name__)
            self._escalated_from_memory.add(a["id"])
            self._publish({**a, "escalated": True}, "escalated", stored=False)
        return [a["id"] for a in due]

    def load_watch(self) -> None:
        """Remember the open, not yet escalated alerts (at start)."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(alerts).where(alerts.c.status == "open")
                                .where(alerts.c.escalated.is_(False))).all()
        self._watch = {int(r.id): public(dict(r._mapping)) for r in rows}

    # --- reads and delivery ---------------------------------------------------------------

    def get(self, alert_id: int) -> dict[str, Any]:
        """One alert as a dict."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise AlertError(404, "no such alert")
        return dict(row._mapping)

    def list_alerts(self, *, units: set[str] | None = None, status: str | None = None,
             resident_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Alerts, highest priority and newest first."""
        q = select(alerts)
        if units is not None:
            q = q.where(alerts.c.unit_id.in_(sorted(units)))
        if status == "unresolved":
            q = q.where(alerts.c.status != "resolved")
        elif status is not None:
            q = q.where(alerts.c.status == status)
        if resident_id is not None:
            q = q.where(alerts.c.resident_id == resident_id)
        q = q.order_by(alerts.c.priority, alerts.c.raised_ms.desc()).limit(limit)
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def events_after(self, event_id: int, units: set[str] | None,
                     limit: int = 500) -> list[dict[str, Any]]:
        """Transitions after an event id, each with the alert as it is now (one query)."""
        q = (select(alert_events.c.id.label("event_id"), alert_events.c.transition,
                    alert_events.c.by, alert_events.c.at_ms, alerts)
             .join(alerts, alerts.c.id == alert_events.c.alert_id)
             .where(alert_events.c.id > event_id).order_by(alert_events.c.id).limit(limit))
        if units is not None:
            q = q.where(alert_events.c.unit_id.in_(sorted(units)))
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        return [{"event_id": r["event_id"], "transition": r["transition"], "by": r["by"],
                 "at_ms": r["at_ms"], "alert": public(r)} for r in rows]

    def last_event_id(self) -> int:
        """Newest event id (0 if none)."""
        with self.store.engine.connect() as conn:
            value = conn.execute(select(alert_events.c.id).order_by(alert_events.c.id.desc())
                                 .limit(1)).scalar()
        return int(value or 0)

    def message(self, alert_id: int, transition: str, event_id: int | None = None,
                event: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON an alert transition is delivered as (pseudonymous: no names)."""
        a = self.get(alert_id)
        return {"event_id": event_id, "transition": transition,
                "by": event["by"] if event else None,
                "at_ms": event["at_ms"] if event else None, "alert": public(a)}

    def centre_update(self, alert_id: int, status: str, detail: str | None) -> bool:
        """The alarm receiving centre's answer to the hand-off of this alert (SCAIP,
        gateway/scaip/service.py): stored on the alert; a change is a stored step
        (`centre_<status>`) shown on the board. Returns whether it changed."""
        now = now_ms()
        with self.store.engine.begin() as conn:
            row = conn.execute(select(alerts.c.unit_id, alerts.c.centre_status,
                                      alerts.c.centre_detail)
                               .where(alerts.c.id == alert_id)).first()
            if row is None:
                return False
            changed: bool = row.centre_status != status
            if not changed and row.centre_detail == detail:
                return False
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(
                centre_status=status, centre_detail=(detail or None) and detail[:120]))
            if changed:
                self._event(conn, alert_id, row.unit_id, f"centre_{status}", None, now,
                            note=detail)
        if changed:
            self._deliver(alert_id, f"centre_{status}")
        else:
            self.broadcast.notify()  # the same state with a new detail (the next retry)
        return changed

    def _event(self, conn: Any, alert_id: int, unit: str, transition: str, by: str | None,
               at: int, note: str | None = None) -> None:
        conn.execute(insert(alert_events).values(alert_id=alert_id, unit_id=unit,
                                                 transition=transition, by=by, at_ms=at,
                                                 note=note))

    def _deliver(self, alert_id: int, transition: str, *,
                 publish: bool = True) -> dict[str, Any]:
        """Wake the streams and publish on MQTT; returns the alert as it now is."""
        self.broadcast.notify()
        a = self.get(alert_id)
        shown = public(a)
        if a["status"] == "open" and not a["escalated"]:
            self._watch[alert_id] = shown
        else:
            self._watch.pop(alert_id, None)
        if publish:
            self._publish(shown, transition)
            for listener in self.listeners:
                try:
                    listener(shown, transition)
                except Exception:  # a listener must never break the lifecycle
                    log.exception("alert %s: a listener failed", alert_id)
        return a

    def _publish(self, alert: dict[str, Any], transition: str, *,
                 stored: bool = True) -> None:
        if self.publish is None:
            return
        body: dict[str, Any] = {"transition": transition, "alert": alert}
        if not stored:
            body["stored"] = False  # sent from memory while the database was unreachable
        unit = alert["unit_id"]
        if transition == "escalated":
            target = self._units.get(unit)
            unit = target.escalation_unit if target and target.escalation_unit else unit
        try:
            self.publish(unit, body)
        except Exception:  # delivery must never break the lifecycle; it is retried by paho
            log.exception("publishing alert %s failed", alert.get("id"))

    # --- staff visits ---------------------------------------------------------------------

    def visit_started(self, resident_id: str, staff_id: str, device_id: str,
                      start_ms: int) -> None:
        """Store the start of a staff visit, once: the detector rebuild after a restart
        replays lock events that were already recorded."""
        with self.store.engine.begin() as conn:
            known = conn.execute(select(visits.c.id).where(visits.c.resident_id == resident_id)
                                 .where(visits.c.staff_id == staff_id)
                                 .where(visits.c.start_ms == start_ms)).first()
            if known is None:
                conn.execute(insert(visits).values(resident_id=resident_id,
                                                   staff_id=staff_id, device_id=device_id,
                                                   start_ms=start_ms))

    def visit_ended(self, resident_id: str, staff_id: str, start_ms: int, end_ms: int) -> None:
        """Store the end of a staff visit."""
        with self.store.engine.begin() as conn:
            conn.execute(update(visits).where(visits.c.resident_id == resident_id)
                         .where(visits.c.staff_id == staff_id)
                         .where(visits.c.start_ms == start_ms).values(end_ms=end_ms))

    def visits(self, resident_id: str) -> list[dict[str, Any]]:
        """Visits to one resident, newest first."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(visits).where(visits.c.resident_id == resident_id)
                                .order_by(visits.c.start_ms.desc()).limit(500))
            return [dict(r._mapping) for r in rows]


def condition_key(d: Decision) -> str:
    """The stored key of a detector condition: one unresolved alert per key."""
    return f"{d.resident_id}:{d.key}"


def public(a: dict[str, Any]) -> dict[str, Any]:
    """Alert fields for delivery (ids and times; no names or free text about the person)."""
    return {k: a[k] for k in (
        "id", "resident_id", "unit_id", "kind", "priority", "status", "escalated",
        "condition_cleared", "device_id", "room", "during_visit", "event_ms", "raised_ms",
        "escalation_due_ms", "acknowledged_by", "acknowledged_ms", "resolved_by",
        "resolved_ms", "outcome", "centre_status", "centre_detail")}
