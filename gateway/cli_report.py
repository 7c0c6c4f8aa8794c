"""`tillsyn report followup|digital-trial|unit`: the IBIC reports as HTML, CSV or JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(help="IBIC reports: individual follow-up, digital trial, unit level.",
                  no_args_is_help=True)
err = Console(stderr=True)
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Gateway configuration YAML")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="html, csv or json")]
LangOpt = Annotated[str, typer.Option("--lang", help="sv (default) or en")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o",
                                             help="Write to this file (default: stdout)")]


def _required(option: str, value: str) -> date:
    from gateway.cli import parse_date

    parsed = parse_date(option, value)
    assert parsed is not None
    return parsed


def _emit(rep: dict[str, Any], fmt: str, lang: str, out: Path | None) -> None:
    from gateway.cli import fail
    from gateway.ibic.render import render

    if fmt not in ("html", "csv", "json"):
        fail([f"--format: value {fmt!r}: must be html, csv or json"])
    if lang not in ("sv", "en"):
        fail([f"--lang: value {lang!r}: must be sv or en"])
    text = render(rep, fmt, lang)
    if out is None:
        print(text)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {out} ({len(text.encode())} bytes)")


def _run(config: Path, build: Any) -> dict[str, Any]:
    from gateway.cli import fail, runtime_or_fail
    from gateway.ibic.service import IbicError

    rt = runtime_or_fail(config)
    try:
        with err.status("computing indicators from stored data ..."):
            rep: dict[str, Any] = build(rt)
        return rep
    except IbicError as exc:
        fail([str(exc)])
    finally:
        rt.store.close()


def _resident(rt: Any, resident_id: str) -> Any:
    from gateway.cli import fail

    res = rt.ibic.resident(resident_id)
    if res is None:
        fail([f"--resident: value {resident_id!r}: no such resident in the registry"])
    return res


@app.command("followup")
def followup(config: ConfigOpt, resident: Annotated[str, typer.Option(help="Resident id")],
             until: Annotated[str | None, typer.Option(
                 help="Last date of the series, YYYY-MM-DD (default: yesterday)")] = None,
             fmt: FormatOpt = "html", lang: LangOpt = "sv", out: OutOpt = None) -> None:
    """Individual follow-up: needs, goals, weekly indicators, status, linked alerts."""
    from gateway.cli import parse_date
    from gateway.ibic.reports import followup_report

    last = parse_date("--until", until)
    _emit(_run(config, lambda rt: followup_report(rt.ibic, _resident(rt, resident), last)),
          fmt, lang, out)


@app.command("digital-trial")
def digital_trial(
        config: ConfigOpt, resident: Annotated[str, typer.Option(help="Resident id")],
        baseline_first: Annotated[str, typer.Option(help="First night before, YYYY-MM-DD")],
        baseline_last: Annotated[str, typer.Option(help="Last night before")],
        trial_first: Annotated[str, typer.Option(help="First night of the trial")],
        trial_last: Annotated[str, typer.Option(help="Last night of the trial")],
        fmt: FormatOpt = "html", lang: LangOpt = "sv", out: OutOpt = None) -> None:
    """Digital-trial evaluation: physical supervision before against the digital trial."""
    from gateway.ibic.reports import digital_trial_report
    from gateway.supervision.plans import PlanStore
    from gateway.supervision.summary import SupervisionViews

    periods = ((_required("--baseline-first", baseline_first),
                _required("--baseline-last", baseline_last)),
               (_required("--trial-first", trial_first), _required("--trial-last", trial_last)))

    def build(rt: Any) -> dict[str, Any]:
        views = SupervisionViews(rt.store, rt.registry, rt.config, PlanStore(rt.store),
                                 clock=lambda _rid: datetime.now(UTC), since=lambda _rid: None)
        rep: dict[str, Any] = digital_trial_report(rt.ibic, views, _resident(rt, resident),
                                                   *periods)
        return rep

    _emit(_run(config, build), fmt, lang, out)


@app.command("unit")
def unit(config: ConfigOpt, first: Annotated[str, typer.Option(help="First date, YYYY-MM-DD")],
         last: Annotated[str, typer.Option(help="Last date, YYYY-MM-DD")],
         unit_id: Annotated[str | None, typer.Option("--unit", help="One unit (default: all)")]
         = None, fmt: FormatOpt = "html", lang: LangOpt = "sv", out: OutOpt = None) -> None:
    """Unit level: goal fulfilment per life area and provider, follow-ups on time."""
    from gateway.ibic.reports import unit_report

    lo, hi = _required("--first", first), _required("--last", last)
    _emit(_run(config, lambda rt: unit_report(rt.ibic, rt.registry, None, unit_id, lo, hi)),
          fmt, lang, out)
