"""Prometheus metrics of one gateway process (own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from gateway.ingest.pipeline import Counters


class Metrics:
    """Counters and gauges served on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("tillsyn_messages_received", "MQTT messages received", registry=r)
        self.observations = Counter("tillsyn_observations_stored", "Observations committed",
                                    registry=r)
        self.dead_letters = Counter("tillsyn_dead_letters", "Messages stored as dead letters",
                                    registry=r)
        self.redeliveries = Counter("tillsyn_redeliveries",
                                    "Broker redeliveries recognised and not stored again",
                                    registry=r)
        self.unknown_device = Counter("tillsyn_unknown_device_messages",
                                      "Messages from devices not in the registry", registry=r)
        self.consent_filtered = Counter("tillsyn_consent_filtered",
                                        "Readings dropped because consent does not cover them",
                                        registry=r)
        self.clock_overrides = Counter("tillsyn_clock_overrides",
                                       "Device timestamps replaced by receive time", registry=r)
        self.ignored = Counter("tillsyn_ignored_messages",
                               "Valid messages that carry no observation", registry=r)
        self.commit_failures = Counter("tillsyn_commit_failures",
                                       "Batches whose commit failed and was retried", registry=r)
        self.ingest_lag = Gauge("tillsyn_ingest_lag_seconds",
                                "Receive-to-commit delay of the last committed batch",
                                registry=r)
        self.queue_depth = Gauge("tillsyn_ingest_queue_depth",
                                 "Messages received but not yet committed", registry=r)
        self.subscriptions_refused = Counter(
            "tillsyn_mqtt_subscriptions_refused",
            "Device topic subscriptions the broker refused (SUBACK failure; the ACL?)",
            registry=r)
        self.mqtt_connected = Gauge("tillsyn_mqtt_connected", "1 when connected to the broker",
                                    registry=r)
        self.sessions_lost = Counter(
            "tillsyn_mqtt_sessions_lost",
            "Reconnects that found no persistent session at the broker (messages published "
            "meanwhile may be lost)", registry=r)
        self.mqtt_disconnects = Counter(
            "tillsyn_mqtt_disconnects",
            "Connections to the broker that went down, by reason: session_taken_over (MQTT 5: "
            "another client connected with our client id), closed_by_broker, "
            "keepalive_timeout, error", ["reason"], registry=r)
        for reason in ("session_taken_over", "closed_by_broker", "keepalive_timeout", "error"):
            self.mqtt_disconnects.labels(reason=reason)
        self.push_sent = Counter("tillsyn_push_sent", "Web Push messages a push service "
                                 "accepted", registry=r)
        self.push_failed = Counter(
            "tillsyn_push_failed", "Web Push messages not accepted: http_<status>, "
            "unreachable, error (the subscription is kept and tried with the next alert)",
            ["reason"], registry=r)
        self.push_removed = Counter(
            "tillsyn_push_subscriptions_removed",
            "Subscriptions removed because the push service said they are gone (404, 410)",
            registry=r)
        self.push_subscriptions = Gauge("tillsyn_push_subscriptions",
                                        "Phones subscribed to Web Push", registry=r)
        self.scaip_messages = Counter(
            "tillsyn_scaip_messages", "SCAIP requests answered, by centre and result: "
            "accepted, rejected, busy, unreachable (all but accepted are retried)",
            ["centre", "result"], registry=r)
        self.scaip_heartbeats = Counter(
            "tillsyn_scaip_heartbeats", "SCAIP heartbeats by centre and result: accepted, "
            "failed, withheld (the gateway was not well)", ["centre", "result"], registry=r)
        self.scaip_pending = Gauge("tillsyn_scaip_pending",
                                   "SCAIP requests waiting for the centre to accept them",
                                   ["centre"], registry=r)
        self.db_ok = Gauge("tillsyn_database_ok", "1 when the last commit succeeded", registry=r)
        self.db_ok.set(1)
        self.retention_deleted = Counter("tillsyn_retention_deleted",
                                         "Rows deleted by retention", ["table"], registry=r)
        self.retention_last_run = Gauge("tillsyn_retention_last_run_timestamp_seconds",
                                        "When retention last completed", registry=r)
        self.login_failures = Counter("tillsyn_login_failures", "Failed password logins",
                                      registry=r)
        self.login_limited = Counter("tillsyn_login_rate_limited",
                                     "Logins refused because of too many failures", registry=r)
        self.influx_written = Counter("tillsyn_influx_points_written",
                                      "Points written to the time-series server", registry=r)
        self.influx_dropped = Counter(
            "tillsyn_influx_points_dropped",
            "Points not written: buffer_full (oldest dropped while the server was away), "
            "rejected (refused by the server), shutdown", ["reason"], registry=r)
        for reason in ("buffer_full", "rejected", "shutdown"):
            self.influx_dropped.labels(reason=reason)
        self.influx_failures = Counter("tillsyn_influx_write_failures",
                                       "Write requests that failed (retried unless rejected)",
                                       registry=r)
        self.influx_buffer = Gauge("tillsyn_influx_buffer_points",
                                   "Points waiting to be written", registry=r)
        self.api_rejected = Counter(
            "tillsyn_api_rejected",
            "HTTP requests refused at the edge: bad_character (a control character or lone "
            "surrogate), non_finite_number, bad_encoding, bad_query, bad_path, too_large",
            ["reason"], registry=r)
        self.influx_up = Gauge("tillsyn_influx_up", "1 when the last write succeeded",
                               registry=r)

    def add(self, c: Counters) -> None:
        """Add the counters of one committed batch."""
        self.messages.inc(c.messages + c.redeliveries)
        self.observations.inc(c.observations)
        self.dead_letters.inc(c.dead_letters)
        self.redeliveries.inc(c.redeliveries)
        self.unknown_device.inc(c.unknown_device)
        self.consent_filtered.inc(c.consent_filtered)
        self.clock_overrides.inc(c.clock_overrides)
        self.ignored.inc(c.ignored)

    def render(self) -> bytes:
        """Prometheus text exposition."""
        return generate_latest(self.registry)
