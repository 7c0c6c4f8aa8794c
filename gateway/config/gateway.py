"""The gateway configuration file (docs/configuration.md): one root model built from sections."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config.base import StrictModel


class MqttConfig(StrictModel):
    """Connection to the MQTT broker."""

    url: str = Field("mqtt://127.0.0.1:1883", title="Broker URL",
                     description="mqtt://host:port or mqtts://host:port (TLS)")
    username: str | None = Field(None, description="MQTT user name")
    password: SecretStr | None = Field(
        None, description="MQTT password; normally from the environment TILLSYN_MQTT_PASSWORD")
    client_id: str = Field("tillsyn-gateway", min_length=1, max_length=64,
                           description="Client id; the persistent session is keyed on it")
    shared_group: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]+$",
        description="If set, subscribe through $share/<group>/ (MQTT 5) for scale-out")
    ca_file: str | None = Field(None, description="CA bundle for mqtts://")
    keepalive: int = Field(30, ge=5, le=3600, description="Keep-alive in seconds")
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1",
        description="MQTT protocol version. 3.1.1 is the default: the receiver process then "
                    "uses Tillsyn's own subscriber (gateway/mqtt/wire.py): about 30,000 "
                    "msg/s committed, where paho-mqtt alone read MQTT 5 at about 7,800 "
                    "(docs/performance.md); shared subscriptions work with both on "
                    "Mosquitto, EMQX and HiveMQ")
    receiver: Literal["process", "thread"] = Field(
        "process",
        description="Run the MQTT client in its own process (default: uses a second core, "
                    "measured 2x ingest throughput) or in a thread of the gateway process")
    receive_maximum: int = Field(
        2000, ge=1, le=20000,
        description="Unacknowledged QoS 1 messages in flight to us: the MQTT 5 Receive Maximum; "
                    "with 3.1.1 set the broker's max_inflight_messages to at most this")
    session_expiry_seconds: int = Field(
        7 * 24 * 3600, ge=60, le=365 * 24 * 3600,
        description="How long the broker keeps our session (queued messages) while we are away")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not (value.startswith("mqtt://") or value.startswith("mqtts://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        rest = value.split("://", 1)[1]
        if not rest or rest.startswith(":"):
            raise ValueError("needs a host, e.g. mqtt://127.0.0.1:1883")
        port = rest.rsplit(":", 1)[1] if ":" in rest else None
        if port is not None and (not port.isdigit() or not 0 < int(port) < 65536):
            raise ValueError(f"port {port!r} is not a number from 1 to 65535")
        return value

    @model_validator(mode="after")
    def _user_requires_pass(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self

    @property
    def host(self) -> str:
        """Host part of the URL."""
        return self.url.split("://", 1)[1].rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        """Port part of the URL (1883 or 8883 by default)."""
        rest = self.url.split("://", 1)[1]
        if ":" in rest:
            return int(rest.rsplit(":", 1)[1])
        return 8883 if self.tls else 1883

    @property
    def tls(self) -> bool:
        """Whether the URL asks for TLS."""
        return self.url.startswith("mqtts://")


class InfluxConfig(StrictModel):
    """Optional time-series export of observations (docs/timeseries.md): InfluxDB 2 or 3,
    or anything that accepts the InfluxDB v2 write API (VictoriaMetrics)."""

    url: str = Field(..., description="Server base URL, e.g. http://influxdb:8086")
    org: str = Field("tillsyn", min_length=1, description="Organisation")
    bucket: str = Field("tillsyn", min_length=1,
                        description="Bucket (InfluxDB 1.8: database/retention-policy)")
    token: SecretStr | None = Field(None, description="API token; from TILLSYN_INFLUX_TOKEN")
    ca_file: str | None = Field(None, description="CA bundle for https://")
    timeout_seconds: float = Field(10, gt=0, le=300, description="One write request")
    gzip: bool = Field(False, description="Compress write requests")
    batch_size: int = Field(5000, ge=1, le=100_000, description="Points per write request")
    flush_seconds: float = Field(
        1.0, gt=0, le=300, description="Write a smaller batch when this much time has passed")
    buffer_points: int = Field(
        250_000, ge=1000, le=20_000_000,
        description="Points kept while the server is unreachable (about 130 bytes each); "
                    "beyond this the oldest are dropped and counted on /metrics")
    backoff_max_seconds: float = Field(
        60, ge=1, le=3600, description="Longest wait between retries (doubling from 1 s)")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not (value.startswith("http://") or value.startswith("https://")):
            raise ValueError("must start with http:// or https://")
        if not value.split("://", 1)[1].strip("/"):
            raise ValueError("needs a host, e.g. http://127.0.0.1:8086")
        return value.rstrip("/")


class RetentionConfig(StrictModel):
    """How long each kind of data is kept; a scheduled job deletes what is older."""

    observation_days: int = Field(
        90, ge=1, le=36500, description="Raw observations of any kind not named below")
    observation_days_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="Per observation kind, e.g. {position: 30, heartbeat: 14}")
    dead_letter_days: int = Field(30, ge=1, le=36500, description="Dead letters")
    risk_day_days: int = Field(
        730, ge=1, le=36500, description="Daily movement features and fall-risk scores")
    record_days: int = Field(
        1826, ge=365, le=36500,
        description="Documentation: resolved alerts and their events, staff visits, "
                    "supervision journal, goal follow-ups. Default five years, the general "
                    "rule for social-services personal files; the organisation's document "
                    "management plan decides")
    audit_days: int = Field(1826, ge=365, le=36500, description="The audit log")
    every_hours: float = Field(6, gt=0, le=168, description="How often the job runs")

    @field_validator("observation_days_by_kind")
    @classmethod
    def _kinds(cls, value: dict[str, int]) -> dict[str, int]:
        from gateway.config.registry import OBSERVATION_KINDS

        for kind, days in value.items():
            if kind not in OBSERVATION_KINDS:
                raise ValueError(f"unknown observation kind {kind!r}")
            if not 1 <= days <= 36500:
                raise ValueError(f"{kind}: {days} days is not from 1 to 36500")
        return value


class StorageConfig(StrictModel):
    """Where observations and everything else are stored."""

    url: str = Field("sqlite:///var/tillsyn.db",
                     description="sqlite:///path (default, WAL) or postgresql://user@host/db")
    influxdb: InfluxConfig | None = Field(None, description="Optional InfluxDB sink")
    dead_letter_max_bytes: int = Field(
        4096, ge=64, le=1_048_576, description="Payload bytes kept in a dead letter")
    batch_max: int = Field(
        2000, ge=1, le=20000,
        description="Most messages committed in one transaction (a backlog drains in batches "
                    "this large when the in-flight window allows it)")
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not (value.startswith("sqlite:///") or value.startswith("postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class ApiConfig(StrictModel):
    """The HTTP API and web UI."""

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="Port (0 = pick a free one)")
    token_secret: SecretStr | None = Field(
        None, description="Key that signs bearer tokens; from TILLSYN_API_TOKEN_SECRET")
    token_ttl_hours: int = Field(12, ge=1, le=24 * 365, description="Token lifetime")
    login_failures_per_staff: int = Field(
        5, ge=1, le=1000, description="Failed logins for one staff id before it must wait")
    login_failures_per_address: int = Field(
        20, ge=1, le=100000, description="Failed logins from one address before it must wait")
    login_window_seconds: int = Field(
        900, ge=10, le=86400, description="Window in which failed logins are counted")
    trusted_proxies: list[str] = Field(
        default_factory=list, max_length=100,
        description="Addresses (or networks, e.g. 10.0.0.0/24) of reverse proxies whose "
                    "X-Forwarded-For is believed. Default none: the address the login limit "
                    "and the audit log see is the connecting one, whatever a client claims")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value


# The push services of the browsers staff phones use (Chrome/Android, Firefox, Edge and
# Windows, Safari/iOS 16.4+): a subscription naming another host is refused, so a token
# holder cannot make the gateway post to an address of their choosing.
PUSH_SERVICES = ["fcm.googleapis.com", "android.googleapis.com",
                 "updates.push.services.mozilla.com", ".notify.windows.com",
                 "web.push.apple.com"]


class PushConfig(StrictModel):
    """Web Push to night staff phones (docs/push.md)."""

    enabled: bool = Field(True, description="Send priority 1 and 2 alerts as Web Push")
    subject: str = Field(
        "mailto:tillsyn@localhost", pattern=r"^(mailto:|https://)\S+$",
        description="VAPID contact the push services may use (mailto: or https:)")
    endpoint_hosts: list[str] = Field(
        default_factory=lambda: list(PUSH_SERVICES), max_length=50,
        description="Push-service hosts a subscription may name (a leading dot: any "
                    "subdomain); https only, except loopback hosts listed here")
    timeout_seconds: float = Field(5, gt=0, le=60, description="One push request")
    ttl_seconds: int = Field(
        600, ge=30, le=86400,
        description="How long a push service keeps a message for a phone that is off line")


SIP_URI = r"^sips?:[^\s@]+@[^\s@;]+$|^sips?:[A-Za-z0-9.\-\[\]:]+$"


class ScaipCentre(StrictModel):
    """One alarm receiving centre (larmcentral) reached over SIP (docs/alarm-centre.md)."""

    id: str = Field(..., pattern=r"^[A-Za-z0-9_-]{1,32}$",
                    description="Name of this centre in Tillsyn (logs, board, metrics)")
    uri: str = Field(..., pattern=SIP_URI,
                     description="The centre's SIP URI, e.g. sip:scaip@larm.example.se:5061")
    transport: Literal["tcp", "tls"] = Field(
        "tls", description="SIP over TLS (default) or TCP; UDP is not offered: a SCAIP "
                           "request must not be lost to a dropped datagram")
    proxy: str | None = Field(None, pattern=SIP_URI,
                              description="Outbound SIP proxy, if the centre has one")
    username: str | None = Field(None, max_length=128, description="Digest user name")
    password: SecretStr | None = Field(
        None, description="Digest password; normally from the environment "
                          "TILLSYN_SCAIP_PASSWORD_<ID> (upper case) or TILLSYN_SCAIP_PASSWORD")
    realm: str = Field("*", max_length=128, description="Digest realm (* answers any)")
    ca_file: str | None = Field(None, description="CA bundle that signed the centre's "
                                                  "TLS certificate (default: the system's)")
    units: list[str] = Field(default_factory=list,
                             description="Units whose alerts go to this centre (empty: all)")


class ScaipConfig(StrictModel):
    """Hand-off of priority 1 and 2 alerts to alarm receiving centres over SCAIP."""

    enabled: bool = Field(False, description="Send alerts to the centres below")
    local_uri: str = Field("sip:tillsyn@localhost", pattern=SIP_URI,
                           description="Tillsyn's own SIP identity (From)")
    controller_id: str = Field(
        "tillsyn", pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="SCAIP controller id of the gateway itself (its heartbeats)")
    centres: list[ScaipCentre] = Field(default_factory=list, max_length=10)
    max_priority: int = Field(2, ge=1, le=3, description="Send alerts of this priority "
                                                         "and more urgent (1 is highest)")
    heartbeat_seconds: int = Field(
        300, ge=1, le=86400, description="Interval of the PI heartbeat to each centre; it "
                                         "stops while the gateway is not healthy")
    response_timeout_seconds: float = Field(
        10, gt=0, le=120, description="No final answer this long: the request is retried")
    retry_max_seconds: int = Field(30, ge=1, le=600,
                                   description="Back-off between retries grows to this")
    mapping_file: str | None = Field(
        None, description="Kinds and rooms to SCAIP codes (default: the shipped "
                          "gateway/scaip/mapping.yaml)")

    @model_validator(mode="after")
    def _centres(self) -> ScaipConfig:
        if self.enabled and not self.centres:
            raise ValueError("scaip.centres: value []: scaip.enabled needs at least one centre")
        ids = [c.id for c in self.centres]
        if len(ids) != len(set(ids)):
            raise ValueError("scaip.centres: value ids: each centre needs its own id")
        return self


HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class AlertDefaults(StrictModel):
    """Site-wide alert settings; residents may override each (`alerts:` in the registry)."""

    bed_exit_no_return_minutes: int = Field(
        20, ge=1, le=600, description="Out of bed at night this long: bed_exit_no_return")
    bed_exit_moving_minutes: int = Field(
        10, ge=1, le=120, description="Movement seen within this long: up and moving "
                                      "(priority 3); none for this long: priority 2")
    bed_exit_still_minutes: int = Field(
        40, ge=2, le=600, description="Out of bed with no movement this long: priority 1")
    bed_exit_when_moving: Literal["notify", "none"] = Field(
        "notify", description="Up and moving after a night-time bed exit: a priority 3 "
                              "alert (notify) or none")
    rise_time: str | None = Field(
        None, pattern=HHMM, description='The usual rise time, "HH:MM" (default: learnt '
                                        "from the bed over the last 14 nights)")
    inactivity_hours: float = Field(4, gt=0, le=48)
    bathroom_long_minutes: int = Field(30, ge=1, le=600)
    escalation_seconds: int = Field(120, ge=10, le=3600)
    away_after_minutes: int = Field(
        10, ge=2, le=240, description="A passage through the exterior door, then no "
                                      "movement inside this long: away")
    not_home_minutes_after_night_start: int = Field(
        60, ge=0, le=600, description="Away (not planned) this long after the night "
                                      "window starts: not_home_at_night")

    @model_validator(mode="after")
    def _grades(self) -> AlertDefaults:
        if self.bed_exit_still_minutes <= self.bed_exit_moving_minutes:
            raise ValueError(f"bed_exit_still_minutes ({self.bed_exit_still_minutes}) must be "
                             f"more than bed_exit_moving_minutes "
                             f"({self.bed_exit_moving_minutes})")
        return self


class NightWindow(StrictModel):
    """Local wall-clock night window, e.g. 22:00 to 07:00."""

    start: str = Field("22:00", pattern=HHMM)
    end: str = Field("07:00", pattern=HHMM)


class SiteConfig(StrictModel):
    """The site this gateway serves."""

    id: str = Field("site-1", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
                    description="Used in topics tillsyn/v1/<site>/...")
    timezone: str = Field("Europe/Stockholm", description="IANA time zone of the site")
    night: NightWindow = Field(default_factory=NightWindow)
    alerts: AlertDefaults = Field(default_factory=AlertDefaults)
    max_clock_ahead_seconds: int = Field(
        300, ge=1, le=86400, description="A device time further ahead than this is replaced "
                                         "by the receive time (and flagged)")
    max_clock_behind_days: int = Field(
        7, ge=1, le=3650, description="A device time further behind than this is replaced "
                                      "by the receive time (and flagged)")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class RegistryRef(StrictModel):
    """Where the registry file is."""

    path: str | None = Field(None, description="Registry YAML loaded at start (optional)")


class LoggingConfig(StrictModel):
    """Log output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(False, description="Structured JSON log lines")


class RiskConfig(StrictModel):
    """Fall-risk scoring (docs/fall-risk.md)."""

    enabled: bool = Field(True, description="Compute daily movement features and scores")
    model: str | None = Field(
        None, description="Model artefact folder from `tillsyn risk train` (relative to "
                          "this file); without one, features are kept but nothing is scored")
    score_time: str = Field("07:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                            description="Local time after which yesterday is scored")
    baseline_days: int = Field(28, ge=14, le=90,
                               description="The person's own rolling baseline")
    catch_up_days: int = Field(7, ge=1, le=90,
                               description="Days scored after a stop, at most")
    method: Literal["auto", "decline", "model"] = Field(
        "auto", description="What gives the risk: `decline` the walking-speed decline test "
                            "alone (no model); `model` the installed artefact (walking-speed "
                            "change or the full model); `auto` the artefact's own "
                            "recommendation from its held-out comparison, the decline test "
                            "without an artefact (docs/fall-risk.md#which-method)")


class ScaleConfig(StrictModel):
    """Several `tillsyn run` workers sharing one site (docs/scale.md)."""

    enabled: bool = Field(False, description="Run as one of several workers")
    worker_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
        description="This worker's id (default: host name and process id, which in "
                    "Kubernetes is the pod name)")
    slots: int = Field(
        2, ge=1, le=256,
        description="MQTT sessions sharing the device topics through $share: client ids "
                    "<mqtt.client_id>-<n>. Never lower it while messages are queued")
    partitions: int = Field(
        8, ge=1, le=4096,
        description="Resident partitions: each runs its detectors and alerting in one worker")
    lease_seconds: float = Field(
        10, ge=2, le=300, description="A worker that stops renewing loses its slots and "
                                      "partitions to the others after this long")
    reorder_ms: int = Field(
        500, ge=0, le=10_000,
        description="Observations from different sessions are held this long and fed to "
                    "the detectors in event-time order")


class GatewayConfig(StrictModel):
    """Root of the configuration file."""

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    site: SiteConfig = Field(default_factory=SiteConfig)
    registry: RegistryRef = Field(default_factory=RegistryRef)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    profiles_dir: str | None = Field(
        None, description="Folder of device profile YAML files (default: the shipped ones)")
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    scaip: ScaipConfig = Field(default_factory=ScaipConfig)

    @model_validator(mode="after")
    def _scaled_needs_shared(self) -> GatewayConfig:
        if self.scale.enabled:
            if not self.storage.url.startswith("postgresql"):
                raise ValueError("scale.enabled needs PostgreSQL: storage.url must be "
                                 "postgresql://... (the workers share it)")
            if self.mqtt.shared_group is None:
                raise ValueError("scale.enabled needs mqtt.shared_group (the $share group "
                                 "the workers' sessions join)")
        return self
