"""`tillsyn risk simulate|train|score|features`: the fall-risk model on the command line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Fall-risk model: datasets, training and scoring.",
                  no_args_is_help=True)
out = Console()
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Gateway configuration YAML")]


def _progress_bar(label: str, total: int):  # type: ignore[no-untyped-def]
    from gateway.cli_tools import _progress

    bar = _progress()
    task = bar.add_task(label, total=total)
    return bar, lambda n: bar.update(task, advance=n)


@app.command()
def simulate(out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for "
                                                   "features.csv and falls.csv")],
             residents: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
             days: Annotated[int, typer.Option(min=60, max=3650)] = 240,
             seed: int = 1) -> None:
    """Generate a training dataset from the cohort simulator (daily features and falls)."""
    from gateway.risk.dataset import simulated

    bar, step = _progress_bar("simulating residents", residents)
    with bar:
        ds, _ = simulated(residents, days, seed, progress=step)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "features.csv").write_text(ds.features_csv())
    (out_dir / "falls.csv").write_text(ds.falls_csv())
    out.print(f"{out_dir / 'features.csv'}: {sum(len(v) for v in ds.days.values())} "
              f"resident-days; {out_dir / 'falls.csv'}: "
              f"{sum(len(v) for v in ds.falls.values())} falls")


@app.command()
def train(out_dir: Annotated[Path, typer.Option("--out", "-o", help="Artefact folder")],
          features: Annotated[Path | None, typer.Option(
              help="Daily features CSV (schema: docs/fall-risk.md)")] = None,
          falls: Annotated[Path | None, typer.Option(help="Falls CSV: resident_id,date")]
          = None,
          simulate: Annotated[int | None, typer.Option(
              "--simulate", help="Train on this many simulated residents instead")] = None,
          days: Annotated[int, typer.Option(min=60, max=3650,
                                            help="Days per simulated resident")] = 240,
          method: Annotated[str, typer.Option(
              help="auto (the recommended one), speed (walking-speed change alone) or model "
                   "(every input)")] = "auto",
          seed: int = 1) -> None:
    """Compare the methods on held-out residents, train the chosen one and save it."""
    from gateway.cli import fail
    from gateway.errors import ConfigError
    from gateway.risk.dataset import read_csv, simulated
    from gateway.risk.train import train as fit

    if (features is None) == (simulate is None):
        fail(["give either --features (with --falls) or --simulate N"])
    try:
        if simulate is not None:
            bar, step = _progress_bar("simulating residents", simulate)
            with bar:
                ds, _ = simulated(simulate, days, seed, progress=step)
        else:
            assert features is not None
            if falls is None:
                fail(["--falls: a falls CSV (resident_id,date) is needed with --features"])
            ds = read_csv(features, falls)
        bar, step = _progress_bar("training", len(ds.days))
        with bar:
            art = fit(ds, out_dir, seed=seed, simulated=simulate is not None, method=method,
                      progress=step)
    except ConfigError as exc:
        fail(exc.problems)
    ev = art.meta["evaluation"]
    out.print(f"model {art.version} -> {out_dir}")
    out.print(f"trained on {art.meta['samples']} resident-days of {art.meta['residents']} "
              f"residents ({art.meta['positive_samples']} followed by a fall in 21 days)")
    if "comparison" in ev:
        cmp_ = ev["comparison"]
        out.print(f"held out {ev['held_out_residents']} residents ({ev['held_out_days']} days, "
                  f"{ev['held_out_positive']} followed by a fall); 95% intervals from "
                  f"{cmp_['rounds']} bootstrap rounds over residents:")
        for name, r in cmp_["methods"].items():
            out.print(f"  {name:8} ROC AUC {r['roc_auc']:.3f} ({r['roc_auc_ci'][0]:.3f}-"
                      f"{r['roc_auc_ci'][1]:.3f})  Brier {r['brier']:.4f}  AUC minus best "
                      f"{r['auc_minus_best']:+.3f} ({r['auc_minus_best_ci'][0]:+.3f} to "
                      f"{r['auc_minus_best_ci'][1]:+.3f})")
        out.print(f"base rate Brier {ev['base_rate']['brier']}; recommended (the simplest "
                  f"not significantly worse than the best): {cmp_['recommended']}")
    else:
        out.print(f"no comparison: {ev.get('note', 'too little data')}")
    out.print(f"saved: {art.meta['method']} (risk.method: auto uses "
              f"{'the decline test' if art.meta['recommended'] == 'decline' else 'it'}); "
              f"levels: moderate from {art.meta['thresholds'][0]}, high from "
              f"{art.meta['thresholds'][1]} (probability of a fall within 21 days)")


@app.command()
def score(config: ConfigOpt,
          resident: Annotated[str | None, typer.Option(help="Only this resident")] = None,
          day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: every "
                                                  "complete day not scored yet)")] = None
          ) -> None:
    """Score residents from the stored observations with the configured model."""
    from gateway.cli import fail, parse_date, runtime_or_fail

    rt = runtime_or_fail(config)
    assert rt.risk is not None
    if rt.risk.artefact is None:
        fail([f"{config}: risk.model: no model configured; train one with "
              "`tillsyn risk train` and set risk.model"])
    residents = rt.registry.residents
    if resident is not None:
        residents = [r for r in residents if r.id == resident]
        if not residents:
            fail([f"--resident: value {resident!r}: not in the registry"])
    the_day = parse_date("--day", day)
    last = the_day or rt.risk.complete_until()
    first = the_day or last - timedelta(days=rt.config.risk.catch_up_days - 1)
    table = Table("resident", "day", "status", "probability", "level", "main factor")
    bar, step = _progress_bar("scoring", len(residents))
    rows = []
    with bar:
        for res in residents:
            d = first
            while d <= last:
                rows.append(rt.risk.score_day(res, d))
                d += timedelta(days=1)
            step(1)
    for r in rows:
        factors = r["factors"] or []
        table.add_row(r["resident_id"], r["day"], r["status"],
                      "" if r["probability"] is None else f"{r['probability']:.3f}",
                      r["level"] or "", factors[0]["en"] if factors else "")
    out.print(table)


@app.command()
def features(config: ConfigOpt,
             out_file: Annotated[Path, typer.Option("--out", "-o", help="CSV file")],
             since: Annotated[str, typer.Option("--from", help="YYYY-MM-DD")],
             until: Annotated[str | None, typer.Option(
                 "--to", help="YYYY-MM-DD (default: the last complete day)")] = None) -> None:
    """Export daily movement features from the store (the training CSV schema), to join
    with the organisation's own fall records."""
    from gateway.cli import fail, parse_date, runtime_or_fail
    from gateway.risk.dataset import Dataset

    rt = runtime_or_fail(config)
    assert rt.risk is not None
    first = parse_date("--from", since)
    last = parse_date("--to", until) or rt.risk.complete_until()
    assert first is not None
    if last < first:
        fail([f"--to: value {last}: before --from {first}"])
    ds = Dataset(source=f"store {config}")
    bar, step = _progress_bar("computing features", len(rt.registry.residents))
    with bar:
        for res in rt.registry.residents:
            ds.days[res.id] = rt.risk.compute_features(res, first, last)
            step(1)
    out_file.write_text(ds.features_csv())
    out.print(f"{out_file}: {sum(len(v) for v in ds.days.values())} resident-days "
              f"{first}..{last}")
