"""Web Push to night staff phones (RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID).

Every new priority 1 or 2 alert, an alert whose priority rises to 1 or 2, and every
escalation is sent to each subscribed phone of the staff of the alert's unit (and, for an
escalation, of the unit it escalates to). The message is encrypted for that phone
(aes128gcm): the push service sees only ciphertext. It holds what the board shows on a
card's first line and no more: kind, priority, room, the first line of the action plan,
and a link to the alert on the board; never the resident's name.

Sending runs on its own thread with a small pool (one slow push service must not hold up
the others); a subscription the push service says is gone (404, 410) is removed; every
failure is counted on /metrics.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, insert, select, update

from gateway.config.gateway import PushConfig
from gateway.config.registry import Registry
from gateway.metrics import Metrics
from gateway.push.keys import public_key, vapid
from gateway.storage.schema import push_subscriptions
from gateway.storage.store import Store, now_ms
from gateway.web.catalogue import Texts

log = logging.getLogger(__name__)
PUSHED = frozenset({"raised", "priority_raised", "escalated"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
POOL = 16
MAX_PER_STAFF = 10


class PushError(Exception):
    """A subscription that cannot be accepted (status: the HTTP answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Subscription:
    """One phone's subscription."""

    id: int
    staff_id: str
    endpoint: str
    p256dh: str
    auth: str


class PushSender:
    """Keeps subscriptions and sends alerts to them."""

    def __init__(self, store: Store, registry: Registry, config: PushConfig, metrics: Metrics,
                 texts: Texts) -> None:
        self.store = store
        self.registry = registry
        self.config = config
        self.metrics = metrics
        self.texts = texts
        self.key = vapid(store)
        self.public_key = public_key(self.key)
        self._jobs: queue.Queue[tuple[dict[str, Any], str, float] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(POOL, thread_name_prefix="tillsyn-push")
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=POOL, pool_maxsize=POOL)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._units = {u.id: u for u in registry.units}
        self._residents = {r.id: r for r in registry.residents}
        self.sent: list[tuple[int, str, float]] = []  # (alert id, endpoint, monotonic)

    # --- subscriptions ----------------------------------------------------------------------

    def check_endpoint(self, endpoint: str) -> None:
        """Refuse an endpoint that is not a known push service (or an allowed loopback)."""
        url = urlparse(endpoint)
        host = (url.hostname or "").lower()
        allowed = any(host == h or (h.startswith(".") and host.endswith(h))
                      for h in self.config.endpoint_hosts)
        if not allowed:
            raise PushError(422, f"endpoint: {host or endpoint[:40]!r} is not a push service "
                                 "this site allows (push.endpoint_hosts)")
        if url.scheme != "https" and not (url.scheme == "http" and host in LOOPBACK):
            raise PushError(422, "endpoint: a push service is reached over https")

    def subscribe(self, staff_id: str, endpoint: str, p256dh: str, auth: str) -> None:
        """Keep a phone's subscription (the same endpoint again replaces the old one)."""
        self.check_endpoint(endpoint)
        with self.store.engine.begin() as conn:
            conn.execute(delete(push_subscriptions)
                         .where(push_subscriptions.c.endpoint == endpoint))
            count = len(conn.execute(select(push_subscriptions.c.id).where(
                push_subscriptions.c.staff_id == staff_id)).all())
            if count >= MAX_PER_STAFF:
                raise PushError(409, f"at most {MAX_PER_STAFF} phones per staff member; "
                                     "turn notifications off on one first")
            conn.execute(insert(push_subscriptions).values(
                staff_id=staff_id, endpoint=endpoint, p256dh=p256dh, auth=auth,
                created_ms=now_ms(), failures=0))
        self._gauge()

    def unsubscribe(self, staff_id: str, endpoint: str) -> bool:
        """Forget one of the caller's subscriptions."""
        with self.store.engine.begin() as conn:
            n = conn.execute(delete(push_subscriptions)
                             .where(push_subscriptions.c.staff_id == staff_id)
                             .where(push_subscriptions.c.endpoint == endpoint)).rowcount
        self._gauge()
        return bool(n)

    def subscriptions(self, staff_ids: list[str] | None = None) -> list[Subscription]:
        """Subscriptions of some staff (all if None)."""
        q = select(push_subscriptions)
        if staff_ids is not None:
            q = q.where(push_subscriptions.c.staff_id.in_(staff_ids))
        with self.store.engine.connect() as conn:
            return [Subscription(r.id, r.staff_id, r.endpoint, r.p256dh, r.auth)
                    for r in conn.execute(q)]

    def _gauge(self) -> None:
        with self.store.engine.connect() as conn:
            n = len(conn.execute(select(push_subscriptions.c.id)).all())
        self.metrics.push_subscriptions.set(n)

    # --- sending ------------------------------------------------------------------------------

    def notify(self, alert: dict[str, Any], transition: str) -> None:
        """An alert changed (AlertService listener): queue it if it is one to push."""
        if transition in PUSHED and int(alert.get("priority", 9)) <= 2:
            self._jobs.put((alert, transition, time.monotonic()))

    def recipients(self, alert: dict[str, Any], transition: str) -> list[str]:
        """Staff of the alert's unit, and of its escalation unit when it escalates."""
        units = {alert["unit_id"]}
        unit = self._units.get(alert["unit_id"])
        if transition == "escalated" and unit is not None and unit.escalation_unit:
            units.add(unit.escalation_unit)
        return [s.id for s in self.registry.staff if s.unit in units]

    def payload(self, alert: dict[str, Any], transition: str) -> dict[str, Any]:
        """What the notification shows: no name, nothing the board's card line does not."""
        t = self.texts.get
        res = self._residents.get(alert["resident_id"])
        plan = (res.action_plan.strip().splitlines() or [""])[0][:160] if res else ""
        room = self.texts.room(alert.get("room"), self.registry)
        title = f"{t('priority')} {alert['priority']} · {t('kind_' + alert['kind'])}"
        if transition == "escalated":
            title = f"{t('escalated')} · {title}"
        body = "\n".join(x for x in (f"{t('room')}: {room}" if room else "", plan) if x)
        return {"alert_id": alert["id"], "kind": alert["kind"],
                "priority": alert["priority"], "transition": transition, "title": title,
                "body": body, "url": f"/?alert={alert['id']}", "tag": f"alert-{alert['id']}",
                "ack": t("ack")}

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._push(*job)
            finally:
                self._jobs.task_done()

    def _push(self, alert: dict[str, Any], transition: str, _queued: float) -> None:
        try:
            subs = self.subscriptions(self.recipients(alert, transition))
            if not subs:
                return
            data = json.dumps(self.payload(alert, transition), ensure_ascii=False)
            for _ in self._pool.map(lambda s: self._send(s, data, int(alert["id"])), subs):
                pass
        except Exception:  # a push must never stop the sender
            log.exception("push of alert %s failed", alert.get("id"))

    def _send(self, sub: Subscription, data: str, alert_id: int) -> str:
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        try:
            webpush(info, data, vapid_private_key=self.key,
                    vapid_claims={"sub": self.config.subject},
                    timeout=self.config.timeout_seconds, ttl=self.config.ttl_seconds,
                    headers={"Urgency": "high"}, requests_session=self._session)
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (404, 410):
                self._forget(sub, f"the push service says it is gone ({status})")
                return "gone"
            return self._failed(sub, f"http_{status}" if status else "error", exc)
        except (requests.RequestException, OSError, ValueError) as exc:
            return self._failed(sub, "unreachable", exc)
        self.metrics.push_sent.inc()
        self.sent.append((alert_id, sub.endpoint, time.monotonic()))
        with self.store.engine.begin() as conn:
            conn.execute(update(push_subscriptions).where(push_subscriptions.c.id == sub.id)
                         .values(last_sent_ms=now_ms(), failures=0))
        return "sent"

    def _failed(self, sub: Subscription, reason: str, exc: Exception) -> str:
        self.metrics.push_failed.labels(reason=reason).inc()
        log.warning("push to a phone of %s failed: %s (%s)", sub.staff_id, reason,
                    type(exc).__name__)
        with self.store.engine.begin() as conn:
            conn.execute(update(push_subscriptions).where(push_subscriptions.c.id == sub.id)
                         .values(failures=push_subscriptions.c.failures + 1))
        return reason

    def _forget(self, sub: Subscription, why: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(delete(push_subscriptions).where(push_subscriptions.c.id == sub.id))
        self.metrics.push_removed.inc()
        log.info("push subscription of %s removed: %s", sub.staff_id, why)
        self._gauge()

    def start(self) -> None:
        """Send in the background."""
        self._gauge()
        self._thread = threading.Thread(target=self._run, name="tillsyn-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        self._session.close()

    def idle(self) -> bool:
        """Nothing queued or being sent (for tests and benches)."""
        return self._jobs.unfinished_tasks == 0
