"""`tillsyn timeseries`: check the time-series server and send a stored range again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gateway.cli import ConfigOpt, fail, parse_time, runtime_or_fail

if TYPE_CHECKING:
    from gateway.config.gateway import InfluxConfig
    from gateway.runtime import Runtime

app = typer.Typer(help="Time-series export (storage.influxdb).", no_args_is_help=True)
err = Console(stderr=True)


def _influx(config: Path) -> tuple[Runtime, InfluxConfig]:
    """The runtime and its storage.influxdb block, or one line and exit 2."""
    rt = runtime_or_fail(config)
    cfg = rt.config.storage.influxdb
    if cfg is None:
        fail([f"{config}: storage.influxdb: not configured"])
    return rt, cfg


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

    rt, cfg = _influx(config)
    since_ms = parse_time("--since", since)
    until_ms = parse_time("--until", until) if until else int(time.time() * 1000)
    if until_ms <= since_ms:
        fail([f"--until must be after --since ({until} <= {since})"])
    sink = build_sink(cfg, rt.config.site.id, rt.metrics)
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
    from gateway.timeseries import influx_writer

    rt, cfg = _influx(config)
    write, close = influx_writer(cfg)
    try:
        write(f"tillsyn_check,site={rt.config.site.id} value=1 {int(time.time() * 1000)}")
    except Exception as exc:
        fail([f"{cfg.url}: write failed: {type(exc).__name__}: {str(exc)[:300]}"])
    finally:
        close()
    print("OK")
