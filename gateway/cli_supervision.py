"""`tillsyn supervision ...`: the morning summary and per-night counts from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Digital night supervision: summaries and counts.", no_args_is_help=True)
out = Console()
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Gateway configuration YAML")]
COLUMNS = [("digital_checks", "digital checks"), ("ok", "ok"), ("attention", "attention"),
           ("unknown", "unknown"), ("late", "late"),
           ("physical_visits_made", "visits made"),
           ("physical_visits_avoided", "visits avoided")]


@app.command("summary")
def summary(config: ConfigOpt,
            unit: Annotated[str, typer.Option(help="Unit id")],
            night: Annotated[str | None, typer.Option(
                help="Evening the night starts on, YYYY-MM-DD (default: last night)")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """The morning summary of one unit, read from the database."""
    from gateway.cli import fail, parse_date, runtime_or_fail
    from gateway.supervision.plans import PlanStore
    from gateway.supervision.summary import SupervisionViews

    rt = runtime_or_fail(config)
    if unit not in {u.id for u in rt.registry.units}:
        fail([f"--unit: value {unit!r}: no such unit in the registry"])
    chosen = parse_date("--night", night or None)
    views = SupervisionViews(rt.store, rt.registry, rt.config, PlanStore(rt.store),
                             clock=lambda _rid: datetime.now(UTC), since=lambda _rid: None)
    data = views.summary(units=None, unit=unit, night=chosen)
    rt.store.close()
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title=f"Night of {data['night']}, unit {unit}")
    table.add_column("resident")
    for _, label in COLUMNS:
        table.add_column(label, justify="right")
    table.add_column("alerts")
    for row in [*data["residents"], {**data["total"], "resident_id": "total"}]:
        alerts = ", ".join(f"{k} {v}" for k, v in row["alerts"].items()) or "-"
        table.add_row(row["resident_id"], *(str(row[k]) for k, _ in COLUMNS), alerts)
    out.print(table)
