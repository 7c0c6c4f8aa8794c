"""Hand-off of alerts to alarm receiving centres over SCAIP (docs/alarm-centre.md).

What to send is read from the stored alert steps (`alert_events`), after a cursor kept per
centre, and written to an outbox (`scaip_messages`) in the same transaction that moves the
cursor: a step that was stored is sent even if the gateway stopped a moment after storing
it, and none is sent twice by a restart. Priority 1 and 2 alerts (`max_priority`) of the
kinds in the mapping are sent when raised, raised in priority and escalated (message type
ME); an acknowledgement (IN) and a resolution (RE) follow for an alert the centre has.

Each message keeps its reference through every retry (the centre can recognise a
repeat). Messages of one alert go in order; a message not accepted (rejected, busy, no
answer, centre down) is retried with back-off from 1 s up to `retry_max_seconds`, for as
long as it takes: nothing is dropped. The centre's answer is stored on the alert and shown
on the board; what waits is on /healthz and /metrics.

The gateway's heartbeat (message type PI) goes to each centre every `heartbeat_seconds`,
and only while the gateway is alive by the same test as the systemd watchdog: a gateway
that is not well stops its heartbeat and the centre raises its own link alarm.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update

from gateway.alerting.service import AlertService
from gateway.config.gateway import ScaipCentre, ScaipConfig
from gateway.config.registry import Registry
from gateway.metrics import Metrics
from gateway.scaip.mapping import SENT_AS_MESSAGE, Mapping, heartbeat, request_for
from gateway.scaip.messages import SNU_BUSY, new_reference
from gateway.scaip.sip import SendResult
from gateway.storage.schema import alert_events, alerts, scaip_cursor, scaip_messages
from gateway.storage.store import Store, now_ms
from gateway.web.catalogue import Texts

log = logging.getLogger(__name__)
FOLLOW_UPS = frozenset({"acknowledged", "resolved"})
BUSY_CODES = frozenset({486, 600, 603})
# 477: a proxy could not send on to the next hop (Kamailio's and others' convention).
UNREACHABLE_CODES = frozenset({0, 408, 477, 480, 500, 502, 503, 504})
WAKE_S = 0.2
Sender = Callable[[str, str, bytes], None]
Problems = Callable[[], list[str]]


@dataclass
class CentreState:
    """What the service knows of one centre, for /healthz and the heartbeat."""

    heartbeat_due: float = 0.0
    heartbeat_ref: str | None = None
    heartbeat_sent: float = 0.0
    last_heartbeat_ok: float | None = None   # monotonic
    last_heartbeat_problem: str | None = None
    heartbeats_paused: bool = False
    in_flight: dict[str, float] = field(default_factory=dict)  # ref -> deadline


def classify(result: SendResult) -> tuple[str, str]:
    """(accepted | rejected | busy | unreachable, detail in Swedish for the board)."""
    code = result.code
    if 200 <= code < 300:
        if result.response is None:
            if result.problem:
                return "rejected", f"oläsligt svar från larmcentralen ({result.problem[:60]})"
            return "accepted", "mottaget (SIP 200, inget SCAIP-svar)"
        r = result.response
        if r.accepted:
            return "accepted", "mottaget"
        what = f"snu {r.snu}: {r.meaning_sv}" + (f" ({r.ste[:40]})" if r.ste else "")
        if r.snu in SNU_BUSY:
            return "busy", f"upptagen, {what}"
        return "rejected", f"avvisat, {what}"
    if code in BUSY_CODES:
        return "busy", f"upptagen (SIP {code})"
    if code in UNREACHABLE_CODES or code >= 500:
        return "unreachable", f"nås inte (SIP {code} {result.reason[:60]})".replace(
            "SIP 0 ", "")
    return "rejected", f"avvisat (SIP {code} {result.reason[:60]})"


class ScaipService:
    """Outbox, sending, retries and heartbeats for the configured centres."""

    def __init__(self, store: Store, registry: Registry, config: ScaipConfig,
                 mapping: Mapping, alerts_: AlertService, metrics: Metrics,
                 problems: Problems, texts: Texts | None = None) -> None:
        self.store = store
        self.registry = registry
        self.config = config
        self.mapping = mapping
        self.alerts = alerts_
        self.metrics = metrics
        self.problems = problems
        self.texts = texts or Texts("sv")
        self.centres = {c.id: c for c in config.centres}
        self.state = {c.id: CentreState() for c in config.centres}
        self._cid = {r.id: r.alarm_centre_id or r.id for r in registry.residents}
        self._results: queue.Queue[SendResult] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sender: Sender | None = None
        self.rounds = 0
        self.failed: str | None = None  # why the SIP stack did not start

    # --- wiring ---------------------------------------------------------------------------

    def notify(self, _alert: dict[str, Any], _transition: str) -> None:
        """An alert changed (AlertService listener): look at the stored steps now."""
        self._wake.set()

    def on_result(self, result: SendResult) -> None:
        """The SIP agent's answer (called on its thread): handled on ours."""
        self._results.put(result)
        self._wake.set()

    def start(self, sender: Sender) -> None:
        """Run with `sender(centre_id, ref, body)` (the SIP agent's send)."""
        self.sender = sender
        self._stop.clear()  # started again after a stop (scale-out: the jobs lease came back)
        self._init_cursors()
        self._thread = threading.Thread(target=self._run, name="tillsyn-scaip", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop; what is not accepted stays in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(WAKE_S)
            self._wake.clear()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - a round that failed (database down) is retried
                log.exception("SCAIP round failed; retrying")
                self._stop.wait(1)

    def step(self) -> None:
        """One round: answers in, new steps to the outbox, due messages and heartbeats out."""
        self.rounds += 1
        answers = 0
        while True:
            try:
                self._handle(self._results.get_nowait())
            except queue.Empty:
                break
            answers += 1
        added = self.collect()
        now = time.monotonic()
        for cid, st in self.state.items():
            for ref, deadline in list(st.in_flight.items()):
                if now > deadline:
                    del st.in_flight[ref]
                    self._failed_attempt(cid, ref, "unreachable",
                                         "inget svar inom "
                                         f"{self.config.response_timeout_seconds:g} s",
                                         code=0, snu=None)
            if st.heartbeat_ref is not None and now > st.heartbeat_sent + \
                    self.config.response_timeout_seconds:
                self._heartbeat_done(cid, False, "no answer")
        self.send_due()
        self.heartbeats()
        if added or answers or self.rounds == 1:  # what waits changes only with these
            self._gauges()

    def _init_cursors(self) -> None:
        with self.store.engine.begin() as conn:
            have = {r.centre_id for r in conn.execute(select(scaip_cursor.c.centre_id))}
            top = int(conn.execute(select(func.coalesce(func.max(alert_events.c.id), 0)))
                      .scalar_one())
            for cid in self.centres:
                if cid not in have:  # a new centre starts with what happens from now on
                    conn.execute(insert(scaip_cursor).values(centre_id=cid, last_event_id=top))

    def centre_for(self, unit_id: str) -> ScaipCentre | None:
        """The centre an alert of this unit goes to: the first that names the unit, else
        the first that names none."""
        named = next((c for c in self.centres.values() if unit_id in c.units), None)
        return named or next((c for c in self.centres.values() if not c.units), None)

    def collect(self) -> int:
        """Stored alert steps after each centre's cursor into the outbox; returns how many
        messages were added."""
        added = 0
        for cid in self.centres:
            with self.store.engine.begin() as conn:
                cursor = int(conn.execute(select(scaip_cursor.c.last_event_id)
                                          .where(scaip_cursor.c.centre_id == cid)).scalar_one())
                rows = conn.execute(
                    select(alert_events.c.id.label("event_id"), alert_events.c.transition,
                           alerts).join(alerts, alerts.c.id == alert_events.c.alert_id)
                    .where(alert_events.c.id > cursor).order_by(alert_events.c.id)
                    .limit(500)).all()
                if not rows:
                    continue
                for row in rows:
                    added += self._outbox(conn, cid, row)
                conn.execute(update(scaip_cursor).where(scaip_cursor.c.centre_id == cid)
                             .values(last_event_id=int(rows[-1].event_id)))
        if added:
            self._wake.set()
        return added

    def _outbox(self, conn: Any, cid: str, row: Any) -> int:
        alert = dict(row._mapping)
        transition = str(alert["transition"])
        centre = self.centre_for(str(alert["unit_id"]))
        if centre is None or centre.id != cid:
            return 0
        if transition in SENT_AS_MESSAGE:
            if int(alert["priority"]) > self.config.max_priority:
                return 0
        elif transition in FOLLOW_UPS:
            known = conn.execute(select(scaip_messages.c.id)
                                 .where(scaip_messages.c.alert_id == alert["id"])
                                 .where(scaip_messages.c.centre_id == cid)
                                 .where(scaip_messages.c.mty == "ME")).first()
            if known is None:
                return 0
        else:
            return 0
        ref = new_reference()
        room = self.texts.room(alert.get("room"), self.registry) or None
        request = request_for(self.mapping, alert, transition,
                              self._cid.get(str(alert["resident_id"]),
                                            str(alert["resident_id"])), ref, room)
        if request is None:
            return 0
        now = now_ms()
        conn.execute(insert(scaip_messages).values(
            centre_id=cid, alert_id=alert["id"], alert_event_id=alert["event_id"],
            transition=transition, mty=request.mty, ref=ref,
            body=request.xml().decode("utf-8"), created_ms=now, attempts=0,
            next_try_ms=now))
        if request.mty == "ME" and alert.get("centre_status") in (None, ""):
            conn.execute(update(alerts).where(alerts.c.id == alert["id"])
                         .values(centre_status="sending", centre_detail=centre.id))
        return 1

    def send_due(self) -> int:
        """Send every due message whose alert has no earlier message still waiting."""
        assert self.sender is not None
        sent = 0
        now = now_ms()
        for cid, st in self.state.items():
            with self.store.engine.connect() as conn:
                pending = conn.execute(
                    select(scaip_messages.c.ref, scaip_messages.c.alert_id,
                           scaip_messages.c.next_try_ms, scaip_messages.c.body)
                    .where(scaip_messages.c.centre_id == cid)
                    .where(scaip_messages.c.accepted_ms.is_(None))
                    .order_by(scaip_messages.c.id).limit(1000)).all()
            blocked: set[int] = set()
            for msg in pending:
                first_of_alert = msg.alert_id not in blocked
                blocked.add(msg.alert_id)
                if not first_of_alert or msg.ref in st.in_flight or msg.next_try_ms > now:
                    continue
                st.in_flight[msg.ref] = time.monotonic() + self.config.response_timeout_seconds
                with self.store.engine.begin() as conn:
                    conn.execute(update(scaip_messages).where(scaip_messages.c.ref == msg.ref)
                                 .values(attempts=scaip_messages.c.attempts + 1))
                self.sender(cid, msg.ref, msg.body.encode("utf-8"))
                sent += 1
        return sent

    def heartbeats(self) -> None:
        """The PI heartbeat to each centre when due, only while the gateway is alive."""
        assert self.sender is not None
        now = time.monotonic()
        for cid, st in self.state.items():
            if now < st.heartbeat_due or st.heartbeat_ref is not None:
                continue
            st.heartbeat_due = now + self.config.heartbeat_seconds
            problems = self.problems()
            if problems:
                self.metrics.scaip_heartbeats.labels(centre=cid, result="withheld").inc()
                if not st.heartbeats_paused:
                    log.warning("SCAIP heartbeat to %s withheld: the gateway is not well (%s)",
                                cid, "; ".join(problems))
                st.heartbeats_paused = True
                continue
            if st.heartbeats_paused:
                log.info("SCAIP heartbeat to %s resumed", cid)
            st.heartbeats_paused = False
            ref = new_reference()
            st.heartbeat_ref, st.heartbeat_sent = ref, now
            self.sender(cid, ref, heartbeat(self.mapping, self.config.controller_id, ref).xml())

    # --- answers -------------------------------------------------------------------------

    def _handle(self, result: SendResult) -> None:
        st = self.state.get(result.centre_id)
        if st is None:
            return
        if result.ref == st.heartbeat_ref:
            state, detail = classify(result)
            self._heartbeat_done(result.centre_id, state == "accepted", detail)
            return
        st.in_flight.pop(result.ref, None)
        state, detail = classify(result)
        snu = result.response.snu if result.response is not None else None
        if state == "accepted":
            self._accepted(result.centre_id, result.ref, result.code, snu, detail)
        else:
            self._failed_attempt(result.centre_id, result.ref, state, detail,
                                 code=result.code, snu=snu)

    def _message(self, ref: str) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(select(scaip_messages).where(scaip_messages.c.ref == ref)
                                ).first()

    def _accepted(self, cid: str, ref: str, code: int, snu: int | None, detail: str) -> None:
        msg = self._message(ref)
        if msg is None:
            return
        with self.store.engine.begin() as conn:
            conn.execute(update(scaip_messages).where(scaip_messages.c.ref == ref).values(
                accepted_ms=now_ms(), last_code=code, last_snu=snu, last_reason=detail[:200]))
        self.metrics.scaip_messages.labels(centre=cid, result="accepted").inc()
        log.info("SCAIP %s of alert %s accepted by %s after %d attempt(s)", msg.mty,
                 msg.alert_id, cid, msg.attempts)
        if msg.mty == "ME":
            self.alerts.centre_update(int(msg.alert_id), "accepted", f"{cid}: {detail}")

    def _failed_attempt(self, cid: str, ref: str, state: str, detail: str, *, code: int,
                        snu: int | None) -> None:
        msg = self._message(ref)
        if msg is None or msg.accepted_ms is not None:
            return
        wait_s = min(self.config.retry_max_seconds, 2 ** max(0, int(msg.attempts) - 1))
        with self.store.engine.begin() as conn:
            conn.execute(update(scaip_messages).where(scaip_messages.c.ref == ref).values(
                next_try_ms=now_ms() + wait_s * 1000, last_code=code, last_snu=snu,
                last_reason=detail[:200]))
        self.metrics.scaip_messages.labels(centre=cid, result=state).inc()
        log.warning("SCAIP %s of alert %s to %s not accepted (%s: %s); retry in %d s",
                    msg.mty, msg.alert_id, cid, state, detail, wait_s)
        if msg.mty == "ME":
            self.alerts.centre_update(int(msg.alert_id), state,
                                      f"{cid}: {detail}, försöker igen")

    def _heartbeat_done(self, cid: str, ok: bool, detail: str) -> None:
        st = self.state[cid]
        st.heartbeat_ref = None
        self.metrics.scaip_heartbeats.labels(centre=cid, result="accepted" if ok
                                             else "failed").inc()
        if ok:
            st.last_heartbeat_ok = time.monotonic()
            st.last_heartbeat_problem = None
        else:
            st.last_heartbeat_problem = detail
            # A failed heartbeat is tried again soon, not after a whole interval.
            st.heartbeat_due = min(st.heartbeat_due, time.monotonic() +
                                   min(self.config.retry_max_seconds,
                                       self.config.heartbeat_seconds))
            log.warning("SCAIP heartbeat to %s failed: %s", cid, detail)

    # --- reporting -----------------------------------------------------------------------

    def pending(self) -> dict[str, dict[str, Any]]:
        """Per centre: messages not accepted and the age of the oldest (seconds)."""
        out: dict[str, dict[str, Any]] = {}
        now = now_ms()
        with self.store.engine.connect() as conn:
            for cid in self.centres:
                row = conn.execute(
                    select(func.count(), func.min(scaip_messages.c.created_ms))
                    .where(scaip_messages.c.centre_id == cid)
                    .where(scaip_messages.c.accepted_ms.is_(None))).one()
                out[cid] = {"pending": int(row[0]),
                            "oldest_s": round((now - row[1]) / 1000, 1) if row[1] else 0.0}
        return out

    def _gauges(self) -> None:
        for cid, p in self.pending().items():
            self.metrics.scaip_pending.labels(centre=cid).set(p["pending"])

    def health(self) -> tuple[dict[str, Any], list[str]]:
        """What /healthz shows, and why it is degraded (empty: it is not)."""
        problems = []
        now = time.monotonic()
        centres: dict[str, Any] = {}
        limit = max(60.0, 3 * self.config.response_timeout_seconds)
        if self.failed is not None:
            problems.append(f"scaip: not running: {self.failed}")
        for cid, p in self.pending().items():
            st = self.state[cid]
            ok_ago = None if st.last_heartbeat_ok is None else round(now - st.last_heartbeat_ok)
            centres[cid] = {**p, "last_heartbeat_ok_s_ago": ok_ago,
                            "heartbeat_problem": st.last_heartbeat_problem,
                            "heartbeats_withheld": st.heartbeats_paused}
            if p["pending"] and p["oldest_s"] > limit:
                problems.append(f"scaip: {p['pending']} message(s) to {cid} not accepted, "
                                f"oldest {p['oldest_s']:.0f} s")
            if st.last_heartbeat_problem is not None:
                problems.append(f"scaip: heartbeat to {cid} failed "
                                f"({st.last_heartbeat_problem})")
        return {"centres": centres}, problems
