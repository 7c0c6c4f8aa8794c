"""Optional time-series export: committed observations to an InfluxDB v2 write API.

The database stays the record; this is a copy for dashboards. Ingest hands each committed
batch to `InfluxSink.offer`, which only appends it to an inbox (no work on the writer
thread). The sink's own thread encodes the observations as line protocol into a bounded
buffer, writes them in batches through `influxdb-client`, and on failure keeps the batch and
retries with exponential back-off. When the buffer is full the oldest points are dropped and
counted on /metrics (`tillsyn_influx_points_dropped_total{reason="buffer_full"}`), as
Telegraf does; `tillsyn timeseries backfill` sends a stored time range again.

Line protocol is encoded here rather than with `influxdb_client.Point` (about 21 µs a point,
against about 2 µs): the tests check the two give the same text.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.config.gateway import InfluxConfig
from gateway.config.loader import secret
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

# Kinds whose string value is a two-state: also exported as a boolean field a graph can draw.
STATE_FLAGS: dict[str, tuple[str, str]] = {
    "contact": ("open", "open"),
    "availability": ("online", "online"),
}
# Dict values: the boolean derived from one key, for the same reason.
DICT_FLAGS: dict[str, tuple[str, str, str]] = {
    "lock": ("locked", "state", "locked"),
    "geofence": ("inside", "event", "enter"),
}
# Not exported: which staff credential opened a lock identifies a staff member, and a
# dashboard needs neither it nor the OwnTracks region id.
SKIPPED_KEYS = frozenset({"user", "credential", "rid"})

_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                             "\r": r"\r"})
_STRING_ESCAPE = str.maketrans({'"': r"\"", "\\": r"\\"})

Writer = Callable[[str], None]


def fields_of(kind: str, value: Any) -> dict[str, bool | float | str]:
    """The line-protocol fields of one observation value (numbers as floats, so a field's
    type never changes between points; None and non-finite numbers left out)."""
    out: dict[str, bool | float | str] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key not in SKIPPED_KEYS:
                _field(out, str(key), item)
        flag = DICT_FLAGS.get(kind)
        if flag is not None and value.get(flag[1]) is not None:
            out[flag[0]] = value.get(flag[1]) == flag[2]
        return out
    _field(out, "value", value)
    state = STATE_FLAGS.get(kind)
    if state is not None and isinstance(value, str):
        out[state[0]] = value == state[1]
    return out


def _field(out: dict[str, bool | float | str], key: str, value: Any) -> None:
    if isinstance(value, bool) or isinstance(value, str):
        out[key] = value
    elif isinstance(value, int | float) and math.isfinite(value):
        out[key] = float(value)


def _format(value: bool | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = str(value)
        return text[:-2] if text.endswith(".0") else text
    return '"' + value.translate(_STRING_ESCAPE) + '"'


def _tag(value: str) -> str:
    text = value.translate(_TAG_ESCAPE)
    return text + " " if text.endswith("\\") else text


class Encoder:
    """Observations to line protocol: measurement = kind; tags device, resident, room, site
    (sorted, as InfluxDB prefers); time in milliseconds."""

    def __init__(self, site: str) -> None:
        self.site = site
        self._tags: dict[tuple[str, str, str | None], str] = {}

    def tags(self, resident_id: str, device_id: str, room: str | None) -> str:
        """The tag part of a device's lines (cached: it is the same for every point)."""
        key = (resident_id, device_id, room)
        text = self._tags.get(key)
        if text is None:
            pairs = [("device", device_id), ("resident", resident_id), ("room", room or ""),
                     ("site", self.site)]
            text = ",".join(f"{k}={_tag(v)}" for k, v in pairs if v)
            if len(self._tags) > 100_000:
                self._tags.clear()  # bounded: devices come and go
            self._tags[key] = text
        return text

    def line(self, obs: Mapping[str, Any]) -> str | None:
        """One observation as one line, or None when it has nothing numeric or textual."""
        fields = fields_of(obs["kind"], obs["value"])
        if not fields:
            return None
        tags = self.tags(obs["resident_id"], obs["device_id"], obs.get("room"))
        body = ",".join(f"{_tag(k)}={_format(v)}" for k, v in sorted(fields.items()))
        return f"{_tag(obs['kind'])},{tags} {body} {int(obs['ts_ms'])}"


class WriteRejected(Exception):
    """The server refused the data itself (HTTP 400, 413, 422): sending it again won't help."""


def influx_writer(cfg: InfluxConfig) -> tuple[Writer, Callable[[], None]]:
    """A function that writes line protocol through influxdb-client, and one that closes it."""
    from influxdb_client.client.influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import SYNCHRONOUS
    from influxdb_client.domain.write_precision import WritePrecision
    from influxdb_client.rest import ApiException

    kwargs: dict[str, Any] = {}
    if cfg.ca_file:
        kwargs["ssl_ca_cert"] = cfg.ca_file
    client = InfluxDBClient(cfg.url, token=secret(cfg.token) or "", org=cfg.org,
                            timeout=int(cfg.timeout_seconds * 1000), enable_gzip=cfg.gzip,
                            **kwargs)
    api = client.write_api(write_options=SYNCHRONOUS)
    precision: Any = WritePrecision.MS  # a str constant the stubs type as the class

    def write(body: str) -> None:
        try:
            api.write(bucket=cfg.bucket, org=cfg.org, record=body,
                      write_precision=precision)
        except ApiException as exc:
            if exc.status in (400, 413, 422):
                raise WriteRejected(f"HTTP {exc.status}: {str(exc.body)[:300]}") from None
            raise

    return write, client.close


class InfluxSink:
    """Bounded, batching, retrying export of committed observations."""

    def __init__(self, cfg: InfluxConfig, site: str, metrics: Metrics, writer: Writer, *,
                 close: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.encoder = Encoder(site)
        self._write = writer
        self._close = close
        self._inbox: deque[list[dict[str, Any]]] = deque()
        self._lines: deque[str] = deque()
        self._retrying: list[str] = []
        self._stop = threading.Event()
        self._flush_deadline = 0.0
        self._thread: threading.Thread | None = None
        self.up: bool | None = None  # None until the first write
        self.last_error = ""
        self.written = 0
        self.drops: dict[str, int] = {}  # points not written, by reason
        # Counted where they happen, so `pending()` never misses a batch the export thread
        # is holding between the inbox and the buffer: offered (ingest side), and offered
        # observations with nothing to export (export side).
        self._offered = 0
        self._skipped = 0

    # --- from ingest (the writer thread) -------------------------------------------------

    def offer(self, observations: list[dict[str, Any]]) -> None:
        """Hand over one committed batch; O(1), never blocks, never raises."""
        if observations:
            self._offered += len(observations)
            self._inbox.append(observations)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the export thread."""
        self._thread = threading.Thread(target=self._run, name="tillsyn-influx", daemon=True)
        self._thread.start()
        log.info("time-series export to %s (bucket %s)", self.cfg.url, self.cfg.bucket)

    def stop(self, flush_seconds: float = 5.0) -> None:
        """Write what is buffered for up to `flush_seconds`, then count the rest as dropped."""
        self._flush_deadline = time.monotonic() + flush_seconds
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=flush_seconds + self.cfg.timeout_seconds + 1)
        left = self.pending()
        if left:
            self._drop(left, "shutdown")
            log.warning("time-series export stopped with %d points not written", left)
        if self._close is not None:
            self._close()

    @property
    def dropped(self) -> int:
        """Points not written, all reasons."""
        return sum(self.drops.values())

    def buffered(self) -> int:
        """Points encoded and waiting to be written (the bounded buffer, plus a failed batch)."""
        return len(self._lines) + len(self._retrying)

    def pending(self) -> int:
        """Observations offered and neither written, dropped nor without an exportable
        value: the buffer, a failed batch and batches not yet encoded."""
        return self._offered - self.written - self.dropped - self._skipped

    # --- the export thread ----------------------------------------------------------------

    def _drop(self, n: int, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n
        self.metrics.influx_dropped.labels(reason=reason).inc(n)

    def _encode_inbox(self) -> None:
        lines = self._lines
        cap = self.cfg.buffer_points
        encode = self.encoder.line
        while self._inbox:
            batch = self._inbox.popleft()
            for obs in batch:
                text = encode(obs)
                if text is not None:
                    lines.append(text)
                else:
                    self._skipped += 1
            over = len(lines) - cap
            if over > 0:
                for _ in range(over):
                    lines.popleft()
                self._drop(over, "buffer_full")
        self.metrics.influx_buffer.set(self.buffered())

    def _next_batch(self) -> list[str]:
        n = min(self.cfg.batch_size, len(self._lines))
        return [self._lines.popleft() for _ in range(n)]

    def _run(self) -> None:
        backoff = 0.0
        retry_at = 0.0
        last_write = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            if stopping and time.monotonic() > self._flush_deadline:
                return
            self._encode_inbox()
            now = time.monotonic()
            if not self._retrying:
                due = (len(self._lines) >= self.cfg.batch_size
                       or (self._lines and (now - last_write >= self.cfg.flush_seconds
                                            or stopping)))
                if due:
                    self._retrying = self._next_batch()
            if self._retrying and now >= retry_at:
                last_write = now
                if self._send(self._retrying):
                    self._retrying = []
                    backoff = 0.0
                    continue
                # failed: back off and keep the batch
                backoff = min(self.cfg.backoff_max_seconds, max(1.0, backoff * 2))
                retry_at = time.monotonic() + backoff * random.uniform(0.5, 1.0)
                if stopping:
                    return
            elif stopping and not self._lines and not self._inbox and not self._retrying:
                return
            self._stop.wait(0.05)

    def _send(self, batch: list[str]) -> bool:
        """Write one batch; True when done with it: written, or rejected by the server
        (dropped and counted). False: keep it and retry."""
        try:
            self._write("\n".join(batch))
        except WriteRejected as exc:
            self._drop(len(batch), "rejected")
            self.metrics.influx_failures.inc()
            log.error("time-series server rejected %d points, dropped: %s", len(batch), exc)
            self.up = True  # it answered
            return True
        except Exception as exc:  # network, 5xx, 401/403, timeouts: keep the batch, retry
            self.metrics.influx_failures.inc()
            self.metrics.influx_up.set(0)
            if self.up is not False:
                log.error("time-series export failing, keeping %d points and retrying: %s",
                          self.buffered(), _short(exc))
            self.up = False
            self.last_error = _short(exc)
            return False
        if self.up is False:
            log.warning("time-series export working again")
        self.up = True
        self.last_error = ""
        self.written += len(batch)
        self.metrics.influx_written.inc(len(batch))
        self.metrics.influx_up.set(1)
        self.metrics.influx_buffer.set(self.buffered())
        return True


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def build_sink(cfg: InfluxConfig | None, site: str, metrics: Metrics) -> InfluxSink | None:
    """The configured sink, or None when `storage.influxdb` is not set."""
    if cfg is None:
        return None
    write, close = influx_writer(cfg)
    return InfluxSink(cfg, site, metrics, write, close=close)


def backfill(sink: InfluxSink, batches: Iterable[list[dict[str, Any]]],
             progress: Callable[[int], None] | None = None, *, stall_s: float = 60.0) -> int:
    """Send stored observations again (a range lost to a long outage) through the sink's
    buffer, batching and retries, without letting the buffer overflow; then wait until all
    is written. Returns how many observations were read. Raises TimeoutError when nothing
    could be written for `stall_s` seconds."""
    n = 0
    room = sink.cfg.buffer_points // 2
    for batch in batches:
        for start in range(0, len(batch), room):
            part = batch[start:start + room]
            _wait(sink, room, stall_s)
            sink.offer(part)
            n += len(part)
            if progress is not None:
                progress(len(part))
    _wait(sink, 0, stall_s)
    return n


def _wait(sink: InfluxSink, most: int, stall_s: float) -> None:
    """Until at most `most` points are pending, as long as writes make progress."""
    written, since = sink.written, time.monotonic()
    while sink.pending() > most:
        if sink.written != written:
            written, since = sink.written, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise TimeoutError(f"nothing written for {stall_s:.0f} s: "
                               f"{sink.last_error or 'no answer'}")
        time.sleep(0.05)
