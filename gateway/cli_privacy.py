"""`tillsyn export resident`, `tillsyn erase resident` and `tillsyn db prune`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from gateway.cli import ConfigOpt, db_app, fail, runtime_or_fail

export_app = typer.Typer(help="A person's data on request (GDPR art. 15 and 20).",
                         no_args_is_help=True)
erase_app = typer.Typer(help="Erase a person's measured data (GDPR art. 17).",
                        no_args_is_help=True)
err = Console(stderr=True)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"),
                    TextColumn("{task.completed} rows"), console=err)


def _counts(title: str, counts: dict[str, int]) -> None:
    table = Table("table", "rows", title=title)
    for name, n in counts.items():
        table.add_row(name, str(n))
    err.print(table)


@export_app.command("resident")
def export_resident(resident_id: Annotated[str, typer.Argument(help="Resident id")],
                    config: ConfigOpt,
                    out: Annotated[Path | None, typer.Option(
                        "--out", help="JSON file to write (default: standard output)")] = None,
                    by: Annotated[str, typer.Option(help="Who asks (for the audit log)")] = "cli",
                    ) -> None:
    """Everything stored about one person, as one JSON document."""
    from gateway.privacy import export_resident as export

    rt = runtime_or_fail(config)
    known = rt.registry.resident(resident_id) is not None
    if not known and not rt.store.observations(resident_id, limit=1):
        fail([f"{config}: resident id {resident_id!r} is neither in the registry nor in the "
              "database"])
    with _progress() as progress:
        task = progress.add_task("export", total=None)

        def step(name: str, n: int) -> None:
            progress.update(task, description=f"export {name}", completed=n)

        if out is None:
            counts = export(rt.store, rt.registry, resident_id, sys.stdout, step)
        else:
            with out.open("w", encoding="utf-8") as f:
                counts = export(rt.store, rt.registry, resident_id, f, step)
    rt.store.audit(by, "export_resident", resident_id, str(out) if out else "stdout")
    _counts(f"exported {resident_id}" + (f" to {out}" if out else ""), counts)


@erase_app.command("resident")
def erase_resident(resident_id: Annotated[str, typer.Argument(help="Resident id")],
                   config: ConfigOpt,
                   yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
                   by: Annotated[str, typer.Option(help="Who decided (audit log)")] = "cli",
                   ) -> None:
    """Erase what is measured about a person: observations, device status, movement
    features and risk scores, dead letters of their devices, consent changes. Alerts,
    visits, the supervision journal, goals and follow-ups are documentation the
    organisation must keep: they stay until retention (storage.retention.record_days)."""
    from gateway.privacy import KEPT
    from gateway.privacy import erase_resident as erase

    rt = runtime_or_fail(config)
    res = rt.registry.resident(resident_id)
    if res is not None and res.devices:
        err.print(f"[yellow]warning:[/] {resident_id} is still in the registry with "
                  f"{len(res.devices)} devices: remove them from the registry, or new data "
                  "will be stored again.")
    if not yes and not typer.confirm(f"Erase the measured data of {resident_id}?"):
        raise typer.Exit(1)
    counts = erase(rt.store, rt.registry, resident_id)
    rt.store.audit(by, "erase_resident", resident_id,
                   ", ".join(f"{k}={v}" for k, v in counts.items()))
    _counts(f"erased for {resident_id}", counts)
    err.print("kept (documentation duty, removed by retention): " + ", ".join(KEPT))


@db_app.command("prune")
def prune(config: ConfigOpt) -> None:
    """Apply retention now (the service also does it every storage.retention.every_hours)."""
    from gateway.privacy import prune as run

    rt = runtime_or_fail(config)
    with _progress() as progress:
        task = progress.add_task("prune", total=None)
        counts = run(rt.store, rt.config.storage.retention, progress=lambda name, n:
                     progress.update(task, description=f"prune {name}", completed=n))
    _counts("deleted by retention", counts)
