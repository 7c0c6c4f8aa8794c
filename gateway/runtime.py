"""Assemble a running gateway from validated configuration (the one composition root)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.alerting.runner import DetectorRunner
from gateway.alerting.service import AlertService
from gateway.config.gateway import GatewayConfig
from gateway.config.loader import load_config, load_registry, registry_path, secret
from gateway.config.registry import Registry
from gateway.config.resident import alert_problems
from gateway.errors import ConfigError
from gateway.ibic.service import IbicService
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.router import Router
from gateway.ingest.service import IngestService
from gateway.metrics import Metrics
from gateway.mqtt.outbound import Outbound
from gateway.occupancy.absences import AbsenceService
from gateway.occupancy.views import OccupancyViews
from gateway.privacy import prune
from gateway.profiles.loader import ProfileLibrary, check_registry, load_profiles
from gateway.push.sender import PushSender
from gateway.risk.service import RiskService, load_model
from gateway.scaip import check_scaip
from gateway.scaip.service import ScaipService
from gateway.scaip.sip import SipAgent
from gateway.scale.worker import Worker, start_worker, stop_worker
from gateway.schedule import Periodic
from gateway.storage.migrate import upgrade
from gateway.storage.store import Store
from gateway.supervision.journal import Journal
from gateway.supervision.plans import PlanStore, detector_plan
from gateway.supervision.summary import SupervisionViews
from gateway.timeseries import InfluxSink, build_sink
from gateway.web.catalogue import Texts

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Collaborators shared by ingest, the API and the CLI."""

    config: GatewayConfig
    registry: Registry
    profiles: ProfileLibrary
    store: Store
    metrics: Metrics = field(default_factory=Metrics)
    ingest: IngestService | None = None
    alerts: AlertService | None = None
    detectors: DetectorRunner | None = None
    publisher: Outbound | None = None
    journal: Journal | None = None
    absences: AbsenceService | None = None
    push: PushSender | None = None
    plans: PlanStore | None = None
    supervision: SupervisionViews | None = None
    ibic: IbicService | None = None
    risk: RiskService | None = None
    retention: Periodic | None = None
    timeseries: InfluxSink | None = None
    worker: Worker | None = None  # one of several workers (scale.enabled)
    scaip: ScaipService | None = None
    sip: SipAgent | None = None

    def ingests(self) -> list[IngestService]:
        """The ingest services running in this process (several with scale-out slots)."""
        if self.worker is not None:
            return self.worker.ingests()
        return [self.ingest] if self.ingest is not None else []

    def set_consent(self, resident_id: str, kinds: list[str]) -> None:
        """A consent change: applies to the next batch of every local ingest."""
        for ingest in self.ingests():
            ingest.pipeline.set_consent(resident_id, kinds)

    def token_secret(self) -> str:
        """Configured token key, or the one kept in the database."""
        return secret(self.config.api.token_secret) or self.store.token_secret()


def load_site_registry(config: GatewayConfig, config_path: Path | str,
                       profiles: ProfileLibrary) -> Registry:
    """The configured registry, checked against the profiles and the site's settings
    (ConfigError listing every problem); an empty registry when none is configured."""
    reg_path = registry_path(config, config_path)
    if reg_path is None:
        return Registry()
    registry = load_registry(reg_path)
    check_registry(registry, profiles, reg_path)
    problems = alert_problems(registry, config.site)
    if problems:
        raise ConfigError([f"{reg_path}: {p}" for p in problems])
    try:
        check_scaip(config, registry)
    except ConfigError as exc:
        raise ConfigError([f"{config_path}: {p}" for p in exc.problems]) from None
    return registry


def load_runtime(config_path: Path | str, *, migrate: bool = True) -> Runtime:
    """Load config, profiles and registry, check them together, open storage."""
    config = load_config(config_path)
    profiles = load_profiles(config.profiles_dir)
    registry = load_site_registry(config, config_path, profiles)
    if migrate:
        upgrade(config.storage.url)
    store = Store(config.storage.url)
    rt = Runtime(config, registry, profiles, store)
    rt.ibic = IbicService(store, registry, config, profiles)
    rt.risk = RiskService(store, registry, config, profiles, load_model(config, config_path))
    return rt


def build_alerting(rt: Runtime, *, publish: bool = True) -> AlertService:
    """Alert service, detector runner and the MQTT alert publisher for a runtime."""
    if publish:
        rt.publisher = Outbound(rt.config.mqtt, rt.config.site.id)
    rt.alerts = AlertService(rt.store, rt.registry,
                             escalation_seconds=rt.config.site.alerts.escalation_seconds,
                             publish=rt.publisher)
    rt.alerts.load_watch()
    if rt.config.push.enabled:
        rt.push = PushSender(rt.store, rt.registry, rt.config.push, rt.metrics, Texts("sv"))
        rt.alerts.listeners.append(rt.push.notify)
    mapping = check_scaip(rt.config, rt.registry)
    if mapping is not None:
        rt.scaip = ScaipService(rt.store, rt.registry, rt.config.scaip, mapping, rt.alerts,
                                rt.metrics, lambda: liveness_problems(rt))
        rt.alerts.listeners.append(rt.scaip.notify)
    rt.journal = Journal(rt.store, rt.registry, rt.alerts)
    if rt.risk is not None:
        rt.risk.alerting = rt.alerts
    plan_store = PlanStore(rt.store)
    in_force = plan_store.effective_all(rt.registry.residents)
    plans = {r.id: detector_plan(in_force[r.id][0], r, rt.config)
             for r in rt.registry.residents}
    rt.absences = AbsenceService(rt.store, rt.registry, ZoneInfo(rt.config.site.timezone))
    rt.detectors = DetectorRunner(rt.config, rt.registry, rt.profiles, rt.store, rt.alerts,
                                  plans=plans, journal=rt.journal, absences=rt.absences)
    rt.absences.listeners.append(rt.detectors.set_planned)
    rt.plans = plan_store
    occupancy = OccupancyViews(rt.detectors.facts, rt.absences, rt.detectors.settings)
    rt.supervision = SupervisionViews(rt.store, rt.registry, rt.config, plan_store,
                                      rt.detectors.now_for, rt.detectors.supervised_since,
                                      occupancy)
    return rt.alerts


def start_service(rt: Runtime) -> None:
    """Ingest, detectors, alerting and the alert publisher, wired and started (as one
    worker of several with scale.enabled, docs/scale.md)."""
    if rt.config.scale.enabled:
        start_worker(rt)
        return
    ingest = build_ingest(rt)
    build_alerting(rt)
    assert rt.detectors is not None and rt.publisher is not None
    rt.publisher.start()
    if rt.push is not None:
        rt.push.start()
    # Ingest runs from the start: the instant rules judge new observations at once while
    # the other rules are rebuilt from the stored ones (gateway/alerting/runner.py).
    rt.detectors.prepare()
    ingest.on_committed = committed_to(rt.detectors.feed, start_timeseries(rt))
    ingest.start()
    rt.detectors.start()
    start_jobs(rt)
    threading.Thread(target=freeze_when_rebuilt, args=(rt.detectors.rebuilt,),
                     name="tillsyn-gc-freeze", daemon=True).start()


def freeze_when_rebuilt(rebuilt: threading.Event) -> None:
    """Once the detectors are rebuilt, move everything made so far (registry, profiles,
    engines and their replayed state) out of the garbage collector's sight.

    The gateway keeps hundreds of thousands of long-lived objects. Every full collection
    walked all of them: at 2,000 messages/s one came every 5 s and stopped every thread for
    115-140 ms, the whole tail of the SOS latency (found with gc.callbacks; see
    docs/performance.md). Frozen objects are never freed, which is right for these: they
    live as long as the process."""
    rebuilt.wait()
    gc.collect()
    gc.freeze()
    log.info("garbage collector: %d start-up objects frozen", gc.get_freeze_count())


def start_jobs(rt: Runtime) -> None:
    """The site-wide scheduled jobs: IBIC follow-up proposals, fall-risk scoring, retention,
    the hand-off to alarm centres (in one worker only when there are several)."""
    if rt.ibic is not None:
        rt.ibic.start()
    if rt.risk is not None and rt.config.risk.enabled:
        rt.risk.start()
    rt.retention = Periodic("retention", lambda: apply_retention(rt),
                            rt.config.storage.retention.every_hours * 3600,
                            failed="retention round failed; the next round retries")
    rt.retention.start()
    start_handoff(rt)


def start_handoff(rt: Runtime) -> None:
    """The SIP stack and the SCAIP service, if scaip.enabled."""
    if rt.scaip is not None and rt.sip is None:
        sip = SipAgent(rt.config.scaip.local_uri, rt.config.scaip.centres, rt.scaip.on_result)
        try:
            sip.start()
        except RuntimeError as exc:
            # Supervision goes on without the hand-off; /healthz says why (degraded).
            log.error("alarm-centre hand-off not started: %s", exc)
            rt.scaip.failed = str(exc)
            return
        rt.sip = sip
        rt.scaip.failed = None
        rt.scaip.start(rt.sip.send)


def stop_handoff(rt: Runtime) -> None:
    """Stop what start_handoff started (what is not accepted stays in the outbox)."""
    if rt.scaip is not None:
        rt.scaip.stop()
    if rt.sip is not None:
        rt.sip.stop()
        rt.sip = None


def stop_jobs(rt: Runtime) -> None:
    """Stop what start_jobs started."""
    stop_handoff(rt)
    if rt.retention is not None:
        rt.retention.stop()
        rt.retention = None
    if rt.risk is not None:
        rt.risk.stop()
    if rt.ibic is not None:
        rt.ibic.stop()


def start_timeseries(rt: Runtime) -> InfluxSink | None:
    """The time-series export, started, if storage.influxdb is configured."""
    rt.timeseries = build_sink(rt.config.storage.influxdb, rt.config.site.id, rt.metrics)
    if rt.timeseries is not None:
        rt.timeseries.start()
    return rt.timeseries


Committed = Callable[[list[dict[str, Any]], dict[str, dict[str, Any]]], None]


def committed_to(feed: Committed, sink: InfluxSink | None) -> Committed:
    """What ingest calls with each committed batch: the time-series sink (if any), then
    the detectors."""
    if sink is None:
        return feed

    def committed(observations: list[dict[str, Any]],
                  status: dict[str, dict[str, Any]]) -> None:
        sink.offer(observations)
        feed(observations, status)

    return committed


DETECTOR_STALL_S = 15.0


def liveness_problems(rt: Runtime) -> list[str]:
    """Why this gateway is not alive (empty when it is): what the systemd watchdog and the
    SCAIP heartbeat go by. Ingest's writers run and come round, the database answers, the
    detector clock ticks. A broker that is down is not the gateway's fault and does not
    count (it is on /healthz and the status topic)."""
    problems = [p for ingest in rt.ingests() for p in ingest.problems()]
    if not rt.store.ping():
        problems.append("database unreachable")
    if rt.detectors is not None:
        stalled = time.monotonic() - rt.detectors.last_tick
        if stalled > max(DETECTOR_STALL_S, 5 * rt.detectors.tick_seconds):
            problems.append(f"detector clock stopped {stalled:.0f} s ago")
    return problems


def apply_retention(rt: Runtime) -> dict[str, int]:
    """One retention round, counted on /metrics (table names and counts only in the log)."""
    counts = prune(rt.store, rt.config.storage.retention)
    for table, n in counts.items():
        rt.metrics.retention_deleted.labels(table=table).inc(n)
    rt.metrics.retention_last_run.set_to_current_time()
    deleted = {k: v for k, v in counts.items() if v}
    log.info("retention: deleted %s", deleted or "nothing")
    return counts


def stop_service(rt: Runtime) -> None:
    """Stop what start_service started, in reverse order."""
    if rt.worker is not None:
        stop_worker(rt, rt.worker)  # gives slots and partitions back, stopping them
    stop_jobs(rt)
    if rt.ingest is not None:
        rt.ingest.stop()
    if rt.timeseries is not None:
        rt.timeseries.stop()  # after ingest: what was committed is still written
    if rt.detectors is not None:
        rt.detectors.stop()
    if rt.publisher is not None:
        rt.publisher.stop()
    if rt.push is not None:
        rt.push.stop()


def build_ingest(rt: Runtime, client_id: str | None = None) -> IngestService:
    """Create the ingest service for a runtime (for another MQTT client id: a scale-out
    session slot)."""
    pipeline = Pipeline(
        Router(rt.registry, rt.profiles),
        dead_letter_max_bytes=rt.config.storage.dead_letter_max_bytes,
        max_ahead=timedelta(seconds=rt.config.site.max_clock_ahead_seconds),
        max_behind=timedelta(days=rt.config.site.max_clock_behind_days))
    for resident_id, change in rt.store.consent_in_force().items():
        pipeline.set_consent(resident_id, change["kinds"])  # changed through the API
    mqtt = rt.config.mqtt
    if client_id is not None:
        mqtt = mqtt.model_copy(update={"client_id": client_id})
    ingest = IngestService(mqtt, pipeline.router, pipeline, rt.store, rt.metrics,
                           batch_max=rt.config.storage.batch_max, receiver=mqtt.receiver)
    if client_id is None:
        rt.ingest = ingest
    return ingest
