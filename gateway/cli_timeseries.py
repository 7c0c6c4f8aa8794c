"""`tillsyn timeseries`: check the time-series server and send a stored range again."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gateway.cli import ConfigOpt, fail, runtime_or_fail

app = typer.Typer(help="Time-series export (storage.influxdb).", no_args_is_help=True)
err = Console(stderr=True)


def _when(text: str, name: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail([f"--{name}: value {text!r}: not a date or time (YYYY-MM-DD or ISO 8601)"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.command("backfill")
def backfill_cmd(config: ConfigOpt,
                 since: Annotated[str, typer.Option("--since", help="From (ISO date/time, UTC "
                                                                     "unless it has an offset)")],
                 until: Annotated[str | None, typer.Option(
                     "--until", help="Up to, not including (default: now)")] = None) -> None:
    """Send stored observations of a time range to the time-series server again, for
    example after an outage longer than the buffer (points dropped on /metrics). Writing a
    point twice is harmless: InfluxDB keeps one point per series and time."""
    from gateway.timeseries import backfill, build_sink

    rt = runtime_or_fail(config)
    cfg = rt.config.storage.influxdb
    if cfg is None:
        fail([f"{config}: storage.influxdb: not configured, nothing to send to"])
    since_ms = _when(since, "since")
    until_ms = _when(until, "until") if until else int(time.time() * 1000)
    if until_ms <= since_ms:
        fail([f"--until must be after --since ({until} <= {since})"])
    from gateway.config.loader import secret

    sink = build_sink(cfg, rt.config.site.id, rt.metrics, secret(cfg.token))
    assert sink is not None
    total = rt.store.count_between(since_ms, until_ms)
    sink.start()
    with Progress(TextColumn("[bold]backfill"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err) as progress:
        task = progress.add_task("backfill", total=total)
        try:
            backfill(sink, rt.store.observations_between(since_ms, until_ms),
                     lambda n: progress.advance(task, n))
        except TimeoutError as exc:
            sink.stop(flush_seconds=0)
            fail([f"{cfg.url}: {exc}; {sink.written} of {total} points written"])
    sink.stop(flush_seconds=cfg.timeout_seconds)
    if sink.dropped:
        why = ", ".join(f"{n} {reason}" for reason, n in sink.drops.items())
        fail([f"{cfg.url}: {sink.written} of {total} points written; not written: {why}"])
    err.print(f"{sink.written} points written to {cfg.url} (bucket {cfg.bucket}); "
              f"{total - sink.written} observations have no exportable value")


@app.command("check")
def check_cmd(config: ConfigOpt) -> None:
    """Write one test point (measurement tillsyn_check) and report the answer."""
    from gateway.config.loader import secret
    from gateway.timeseries import influx_writer

    rt = runtime_or_fail(config)
    cfg = rt.config.storage.influxdb
    if cfg is None:
        fail([f"{config}: storage.influxdb: not configured"])
    write, close = influx_writer(cfg, secret(cfg.token))
    try:
        write(f"tillsyn_check,site={rt.config.site.id} value=1 {int(time.time() * 1000)}")
    except Exception as exc:
        fail([f"{cfg.url}: write failed: {type(exc).__name__}: {str(exc)[:300]}"])
    finally:
        close()
    print("OK")
