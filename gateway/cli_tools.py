"""Commands that drive devices and data: simulate, replay, demo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gateway.errors import ConfigError

err = Console(stderr=True)
out = Console()


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err)


def _play(broker: str, registry: Any, events: list[Any], speed: float, label: str) -> int:
    from firmware_stubs.player import Player

    player = Player(broker, registry)
    try:
        with _progress() as progress:
            task = progress.add_task(label, total=len(events))
            return player.play(events, speed, lambda n: progress.update(task, completed=n))
    finally:
        player.close()


def simulate(
    broker: Annotated[str, typer.Option(help="mqtt://host:port")],
    registry: Annotated[Path, typer.Option(help="Registry YAML whose homes to play")],
    speed: Annotated[float, typer.Option(help="Times real time; 0 = as fast as possible")] = 60.0,
    nights: Annotated[int, typer.Option(
        min=1, max=5, help="Nights to play (at most 5: older device times would fail the "
                           "gateway's 7-day clock check)")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same nights)")] = 1,
    timezone: Annotated[str, typer.Option(help="Site time zone")] = "Europe/Stockholm",
    staff_visit_every: Annotated[int, typer.Option(help="A staff visit every N nights")] = 3,
) -> None:
    """Play simulated homes (sleep, toilet visits, staff visits) onto a broker."""
    from firmware_stubs.home import last_complete_night, plan_nights
    from gateway.cli import fail
    from gateway.config.loader import load_registry

    try:
        reg = load_registry(registry)
    except ConfigError as exc:
        fail(exc.problems)
    tz = ZoneInfo(timezone)
    first = last_complete_night(datetime.now(UTC), tz, nights_back=nights)
    events, truths = plan_nights(reg, first, nights, seed, tz, staff_visit_every)
    n = _play(broker, reg, events, speed, f"{len(reg.residents)} homes x {nights} nights")
    out.print(f"published {n} device messages; toilet visits "
              f"{sum(t.toilet_visits for t in truths)}, staff visits "
              f"{sum(t.staff_visits for t in truths)}")


def replay(
    file: Annotated[Path, typer.Argument(help="Event log (kasterenSenseData.txt, "
                                              "activities_data.csv or a CASAS .txt)")],
    format: Annotated[str, typer.Option("--format", help="kasteren, tapia or casas")],
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port")] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="Sensor mapping YAML (sensor -> device, room; `exterior: true` for the front "
             "door, `bed: true` for a motion sensor over the bed)")] = None,
    speed: Annotated[float, typer.Option(help="Times real time; 0 = as fast as possible")] = 0.0,
    write_registry: Annotated[Path | None, typer.Option(
        help="Write the registry for the replayed home here")] = None,
    timezone: Annotated[str, typer.Option(help="Site time zone")] = "Europe/Stockholm",
) -> None:
    """Replay a real smart-home log as zigbee2mqtt contact and motion messages.

    Records that cannot be read are skipped and counted, with the first ones named."""
    from firmware_stubs import replay as rp
    from gateway.cli import fail
    from gateway.config.loader import validate
    from gateway.config.registry import Registry

    if not file.is_file():
        fail([f"{file}: no such file"])
    try:
        firings, mp, report = rp.load_home(format, file, mapping)
    except ValueError as exc:
        fail([f"--format: {exc}"])
    except KeyError as exc:
        fail([f"{file}: {exc.args[0]}"])
    except (OSError, yaml.YAMLError) as exc:
        fail([f"{mapping}: {exc}"])
    for line in report.lines() if report.skipped else []:
        err.print(line)
    if not firings:
        fail([f"{file}: no events found for format {format}"])
    reg_data = rp.registry_for(mp)
    if write_registry is not None:
        write_registry.write_text(yaml.safe_dump(reg_data, sort_keys=False))
        out.print(f"wrote registry for {len(mp['sensors'])} sensors to {write_registry}")
    if broker is None:
        return
    events, shift = rp.to_events(firings, mp, ZoneInfo(timezone), datetime.now(UTC))
    span = (events[-1].ts_ms - events[0].ts_ms) / 86_400_000
    out.print(f"{len(firings)} sensor firings -> {len(events)} messages spanning {span:.1f} days,"
              f" shifted {shift} days; the gateway's site.max_clock_behind_days must be "
              f"> {span:.0f} to keep the original times")
    reg = validate(Registry, reg_data, "replay registry")
    n = _play(broker, reg, events, speed, f"replay {format}")
    out.print(f"published {n} messages")


def demo(
    port: Annotated[int, typer.Option(help="Web UI / API port")] = 8000,
    speed: Annotated[float, typer.Option(help="Night playback speed")] = 120.0,
    live_sos_after: Annotated[float, typer.Option(
        min=0, help="Seconds until the live alarm button is pressed")] = 60.0,
) -> None:
    """Private Mosquitto, the gateway on SQLite under ./var, three simulated homes and one
    live alarm button."""
    from gateway.demo import run_demo

    run_demo(Path("var/demo"), port, speed, live_sos_after)


def register(app: typer.Typer) -> None:
    """Attach the tool commands to the main app."""
    app.command("simulate")(simulate)
    app.command("replay")(replay)
    app.command("demo")(demo)
