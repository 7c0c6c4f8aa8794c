"""Render the reports as printable HTML (inline SVG charts, no scripts, no external files)
and as CSV. Text comes from the web UI's message catalogue (`messages.json`), indicator
names from the indicator library and life-area titles from the ICF catalogue."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from gateway.ibic.catalogue import catalogue
from gateway.ibic.indicators import DEFINITIONS
from gateway.web import STATIC

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111;max-width:1000px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:24px 0 8px;border-bottom:2px solid #333}
h3{font-size:15px;margin:16px 0 6px} table{border-collapse:collapse;margin:6px 0 12px;width:100%}
th,td{border:1px solid #bbb;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555}
.goal{page-break-inside:avoid;border:1px solid #999;padding:8px 12px;margin:12px 0}
.status{font-weight:bold} .charts{display:flex;flex-wrap:wrap;gap:12px} svg{background:#fafafa}
.note{color:#555;font-size:12px}
@media print{body{margin:0} .goal{border-color:#000}}
"""


@cache
def _messages() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads((STATIC / "messages.json").read_text("utf-8"))
    return data


def translator(lang: str) -> Callable[[str], str]:
    """Message lookup for `lang` (Swedish unless "en"); unknown keys show as themselves."""
    table = _messages()["en" if lang == "en" else "sv"]
    return lambda key: table.get(key, key)


MONTHS = {"sv": ["jan.", "feb.", "mars", "apr.", "maj", "juni", "juli", "aug.", "sep.",
                 "okt.", "nov.", "dec."],
          "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec"]}


def day_text(iso: str, lang: str) -> str:
    """A date as people write it: "4 dec. 2026" ("4 Dec 2026")."""
    try:
        d = date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    return f"{d.day} {MONTHS['en' if lang == 'en' else 'sv'][d.month - 1]} {d.year}"


def stamp_text(iso: str, lang: str, tz: str | None) -> str:
    """A moment in the site's time zone: "4 dec. 2026 11:58"."""
    try:
        ts = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if tz:
        ts = ts.astimezone(ZoneInfo(tz))
    return f"{day_text(ts.date().isoformat(), lang)} {ts:%H:%M}"


def week_text(label: str, lang: str) -> str:
    """An ISO week label ("2026-W47") as "v. 47" ("week 47")."""
    _, _, week = label.partition("-W")
    return label if not week else (f"week {int(week)}" if lang == "en" else f"v. {int(week)}")


def _fmt(value: Any, unit: str | None = None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if unit == "share":
            return f"{value * 100:.0f} %"
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _table(head: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)) + "</tr>")
    return "".join(out) + "</table>"


def line_chart(title: str, points: list[tuple[str, float | None]], target: float | None,
               unit: str) -> str:
    """A small SVG line chart of weekly values with the target as a dashed line."""
    w, h, left, bottom, top = 440, 180, 44, 28, 22
    values = [v for _, v in points if v is not None]
    hi = max(values + ([target] if target is not None else []) + [1e-9])
    hi = 1.0 if unit == "share" else hi * 1.15
    n = max(1, len(points) - 1)

    def x(i: int) -> float:
        return left + (w - left - 10) * i / n

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / hi)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{y(0)}" x2="{w - 10}" y2="{y(0)}" stroke="#333"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{y(0)}" stroke="#333"/>',
             f'<text x="{left - 4}" y="{y(hi) + 4}" font-size="10" text-anchor="end">'
             f'{escape(_fmt(hi if unit != "share" else 1.0, unit))}</text>',
             f'<text x="{left - 4}" y="{y(0) + 4}" font-size="10" text-anchor="end">0</text>']
    if target is not None:
        parts.append(f'<line x1="{left}" y1="{y(target):.1f}" x2="{w - 10}" '
                     f'y2="{y(target):.1f}" stroke="#0a7" stroke-dasharray="5,4"/>')
    path: list[tuple[float, float] | None] = []
    for i, (label, v) in enumerate(points):
        if i % max(1, len(points) // 6) == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{h - 8}" font-size="10" '
                         f'text-anchor="middle">{escape(label[-3:])}</text>')
        if v is None:
            path.append(None)
            continue
        path.append((x(i), y(v)))
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="#1558b0">'
                     f'<title>{escape(label)}: {escape(_fmt(v, unit))}</title></circle>')
    segment: list[str] = []
    for p in path + [None]:
        if p is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="#1558b0" stroke-width="2" '
                             f'points="{" ".join(segment)}"/>')
            segment = []
        else:
            segment.append(f"{p[0]:.1f},{p[1]:.1f}")
    return "".join(parts) + "</svg>"


def bar_chart(title: str, rows: list[tuple[str, float, float]], labels: tuple[str, str]
              ) -> str:
    """Paired horizontal bars (e.g. baseline vs trial) per metric."""
    w, row_h, left = 660, 34, 220
    h = 30 + row_h * len(rows) + 20
    hi = max([max(a, b) for _, a, b in rows] + [1e-9])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{escape(title)}</text>']
    for i, (label, a, b) in enumerate(rows):
        y0 = 26 + i * row_h
        parts.append(f'<text x="4" y="{y0 + 16}" font-size="11">{escape(label)}</text>')
        for j, (v, colour) in enumerate(((a, "#999"), (b, "#1558b0"))):
            width = (w - left - 50) * v / hi
            parts.append(f'<rect x="{left}" y="{y0 + j * 13}" width="{width:.1f}" '
                         f'height="11" fill="{colour}"/><text x="{left + width + 4:.1f}" '
                         f'y="{y0 + j * 13 + 10}" font-size="10">{escape(_fmt(v))}</text>')
    parts.append(f'<rect x="{left - 200}" y="{h - 14}" width="10" height="10" fill="#999"/>'
                 f'<text x="{left - 186}" y="{h - 5}" font-size="10">{escape(labels[0])}</text>'
                 f'<rect x="{left + 200}" y="{h - 14}" width="10" height="10" fill="#1558b0"/>'
                 f'<text x="{left + 214}" y="{h - 5}" font-size="10">{escape(labels[1])}</text>')
    return "".join(parts) + "</svg>"


def _page(title: str, body: str, lang: str) -> str:
    return (f'<!doctype html><html lang="{"en" if lang == "en" else "sv"}"><head>'
            f'<meta charset="utf-8"><title>{escape(title)}</title><style>{CSS}</style>'
            f"</head><body>{body}</body></html>")


def _area(code: str, lang: str) -> str:
    title = catalogue().life_areas.get(code)
    return f"{code} {title.get(lang)}" if title else code


def _icf(code: str | None, lang: str) -> str:
    if not code:
        return "–"
    title = catalogue().codes.get(code)
    return f"{code} {title.get(lang)}" if title else code


def _ind_name(ind: dict[str, Any], lang: str, t: Callable[[str], str]) -> str:
    name = DEFINITIONS[ind["id"]].title(lang)
    return name + (f" ({t('kind_' + ind['kind'])})" if ind.get("kind") else "")


def _value(v: dict[str, Any], t: Callable[[str], str]) -> str:
    if v["status"] == "not_available":
        return escape(t("r_not_available"))
    if v["status"] == "no_data":
        return escape(t("r_no_data"))
    return escape(_fmt(v["value"], v["unit"]))


def followup_html(rep: dict[str, Any], lang: str) -> str:
    """The individual follow-up report."""
    t = translator(lang)
    r = rep["resident"]
    body = [f"<h1>{escape(t('r_followup_title'))}: {escape(r['name'])} ({escape(r['id'])})</h1>",
            f'<p class="meta">{escape(t("r_unit"))}: {escape(r.get("unit_name", r["unit"]))} · '
            f'{escape(t("r_generated"))}: '
            f'{escape(stamp_text(rep["generated"], lang, rep.get("timezone")))}</p>']
    if rep["action_plan"]:
        body.append(f"<h2>{escape(t('r_action_plan'))}</h2><p>{escape(rep['action_plan'])}</p>")
    body.append(f"<h2>{escape(t('r_needs'))}</h2>")
    body.append(_table([t("r_life_area"), t("r_icf"), ""],
                       [[escape(_area(n["life_area"], lang)),
                         escape(", ".join(_icf(c, lang) for c in n["icf"])) or "–",
                         escape(n["text"])] for n in rep["needs"]])
                if rep["needs"] else f"<p>{escape(t('r_none'))}</p>")
    body.append(f"<h2>{escape(t('r_goals'))}</h2>")
    for g in rep["goals"]:
        body.append(_goal_html(g, lang, t))
    body.append(f'<p class="note">{escape(t("r_simulated_note"))}</p>')
    return _page(f"{t('r_followup_title')} {r['id']}", "".join(body), lang)


def _goal_html(g: dict[str, Any], lang: str, t: Callable[[str], str]) -> str:
    status = escape(t("r_status_" + g["status"]))
    if g["proposal"] is not None:
        p = g["proposal"]["status"]
        status += (f" · {escape(t('r_proposal'))}: "
                   f"{escape(t('r_status_' + p) if p else t('r_no_proposal'))} "
                   f"({escape(t('r_awaiting'))})")
    out = [f'<section class="goal" data-goal="{escape(g["id"])}">',
           f"<h3>{escape(g['text'])}</h3>",
           f'<p class="meta">{escape(_area(g["life_area"], lang))} · ICF '
           f'{escape(_icf(g["icf"], lang))} · {escape(t("r_start"))} '
           f'{day_text(g["start"], lang)} · '
           f'{escape(t("r_follow_up"))} {day_text(g["follow_up"], lang)}</p>',
           f'<p class="status">{escape(t("r_status"))}: {status}</p>']
    rows, charts = [], []
    for s in g["progress"]["indicators"]:
        direction = t("r_at_least" if s["direction"] == "at_least" else "r_at_most")
        rows.append([escape(_ind_name(s, lang, t)),
                     f"{escape(direction)} {escape(_fmt(float(s['target']), s['unit']))}",
                     _value(s["current"], t)])
        if s["available"]:
            charts.append(line_chart(_ind_name(s, lang, t),
                                     [(week_text(p["week"], lang), p["value"])
                                      for p in s["points"]],
                                     float(s["target"]), s["unit"]))
    out.append(_table([t("r_indicator"), t("r_target"), t("r_current")], rows, {2}))
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    alerts = g["linked_alerts"]
    out.append(f"<h3>{escape(t('r_linked_alerts'))} ({len(alerts)})</h3>")
    if alerts:
        out.append(_table([t("r_when"), t("r_kind"), t("r_outcome"), t("r_response")], [
            [escape(a["event"][:16].replace("T", " ")), escape(t("kind_" + a["kind"])),
             escape(t("outcome_" + a["outcome"]) if a["outcome"] else "–"),
             escape(_fmt(a["response_seconds"]))] for a in alerts[:50]], {3}))
    out.append(f"<h3>{escape(t('r_history'))}</h3>")
    out.append(_table([t("r_when"), t("r_status"), "", t("res_comment")], [
        [escape(e["at"][:16].replace("T", " ")), escape(t("r_event_" + e["event"])),
         escape(t("r_status_" + e["status"]) if e["status"] else "–"),
         escape(e["by"] + (": " + e["comment"] if e["comment"] else ""))]
        for e in g["history"]]) if g["history"] else f"<p>{escape(t('r_none'))}</p>")
    return "".join(out) + "</section>"


TRIAL_ROWS = ("nights", "nights_with_data", "physical_night_visits",
              "physical_visits_avoided", "digital_checks", "checks_ok", "checks_attention",
              "checks_unknown", "checks_late", "sleep_disturbed_nights", "alerts",
              "response_median_s", "response_p90_s")


def digital_trial_html(rep: dict[str, Any], lang: str) -> str:
    """The digital-trial evaluation."""
    t = translator(lang)
    r, b, tr = rep["resident"], rep["baseline"], rep["trial"]
    body = [f"<h1>{escape(t('r_trial_title'))}: {escape(r['name'])} ({escape(r['id'])})</h1>",
            f'<p class="meta">{escape(t("r_generated"))}: '
            f'{escape(stamp_text(rep["generated"], lang, rep.get("timezone")))}</p>']
    head = ["", f"{t('r_baseline')} {day_text(b['first'], lang)} – "
                f"{day_text(b['last'], lang)}",
            f"{t('r_trial')} {day_text(tr['first'], lang)} – {day_text(tr['last'], lang)}"]
    body.append(_table(head, [[escape(t("r_" + k)), escape(_fmt(b[k])), escape(_fmt(tr[k]))]
                              for k in TRIAL_ROWS], {1, 2}))

    def per_night(p: dict[str, Any], key: str) -> float:
        return float(p[key]) / p["nights_with_data"] if p["nights_with_data"] else 0.0

    body.append(bar_chart(t("r_per_night"), [
        (t("r_" + k), per_night(b, k), per_night(tr, k)) for k in (
            "physical_night_visits", "digital_checks", "alerts", "sleep_disturbed_nights")],
        (t("r_baseline"), t("r_trial"))))
    kinds = sorted(set(b["alerts_by_kind"]) | set(tr["alerts_by_kind"]))
    body.append(f"<h2>{escape(t('r_alerts_by_kind'))}</h2>")
    body.append(_table(head, [[escape(t("kind_" + k)), str(b["alerts_by_kind"].get(k, 0)),
                               str(tr["alerts_by_kind"].get(k, 0))] for k in kinds], {1, 2})
                if kinds else f"<p>{escape(t('r_none'))}</p>")
    outcomes = sorted(set(b["alerts_by_outcome"]) | set(tr["alerts_by_outcome"]))
    if outcomes:
        body.append(f"<h2>{escape(t('r_alerts_by_outcome'))}</h2>")
        body.append(_table(head, [[escape(t("outcome_" + o) if o != "unresolved"
                                          else t("r_outcome_unresolved")),
                                   str(b["alerts_by_outcome"].get(o, 0)),
                                   str(tr["alerts_by_outcome"].get(o, 0))] for o in outcomes],
                           {1, 2}))
    body.append(f"<h2>{escape(t('r_goal_indicators'))}</h2>")
    for g in rep["goals"]:
        body.append(f"<h3>{escape(g['text'])}</h3>")
        body.append(_table([t("r_indicator"), t("r_target"), head[1], head[2]], [
            [escape(_ind_name(i, lang, t)),
             f"{escape(t('r_at_least' if i['direction'] == 'at_least' else 'r_at_most'))} "
             f"{escape(_fmt(float(i['target']), i['baseline']['unit']))}",
             _value(i["baseline"], t), _value(i["trial"], t)] for i in g["indicators"]],
            {2, 3}))
    body.append(f'<p class="note">{escape(t("r_simulated_note"))}</p>')
    return _page(f"{t('r_trial_title')} {r['id']}", "".join(body), lang)


UNIT_ROWS = ("residents", "residents_with_measurable_goals", "follow_ups_due",
             "follow_ups_on_time", "follow_ups_late", "follow_ups_missing")
_UNIT_KEYS = {"residents": "r_residents", "residents_with_measurable_goals": "r_measurable",
              "follow_ups_due": "r_followups_due", "follow_ups_on_time": "r_followups_on_time",
              "follow_ups_late": "r_followups_late", "follow_ups_missing": "r_followups_missing"}
AREA_COLS = ("goals", "achieved", "partly_achieved", "not_achieved", "active")


def unit_html(rep: dict[str, Any], lang: str) -> str:
    """The unit-level report."""
    t = translator(lang)
    body = [f"<h1>{escape(t('r_unit_title'))}</h1>",
            f'<p class="meta">{escape(t("r_period"))}: {day_text(rep["first"], lang)} – '
            f'{day_text(rep["last"], lang)} · {escape(t("r_generated"))}: '
            f'{escape(stamp_text(rep["generated"], lang, rep.get("timezone")))}</p>',
            f'<p class="note">{escape(t("r_grace").format(days=rep["grace_days"]))}</p>']
    for u in rep["units"]:
        body.append(f"<h2>{escape(u['unit_name'])} ({escape(u['unit'])})"
                    + (f" · {escape(t('r_provider'))}: {escape(u['provider'])}"
                       if u["provider"] else "") + "</h2>")
        body.append(_table(["", t("r_value")], [[escape(t(_UNIT_KEYS[k])), escape(_fmt(u[k]))]
                                                for k in UNIT_ROWS], {1}))
        head = [t("r_life_area"), t("r_goals_total")] + [t("r_status_" + c)
                                                         for c in AREA_COLS[1:]]
        body.append(_table(head, [[escape(_area(a, lang))] + [str(c[k]) for k in AREA_COLS]
                                  for a, c in u["life_areas"].items()], {1, 2, 3, 4, 5}))
        if u["life_areas"]:
            body.append(bar_chart(t("r_status_achieved"), [
                (_area(a, lang)[:30], float(c["goals"]), float(c["achieved"]))
                for a, c in u["life_areas"].items()], (t("r_goals_total"),
                                                        t("r_status_achieved"))))
    return _page(t("r_unit_title"), "".join(body), lang)


# --- CSV -------------------------------------------------------------------------------------


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def followup_csv(rep: dict[str, Any]) -> str:
    """One row per goal, indicator and week."""
    rows = []
    for g in rep["goals"]:
        for s in g["progress"]["indicators"]:
            for p in s["points"]:
                rows.append([rep["resident"]["id"], g["id"], g["life_area"], g["icf"] or "",
                             g["status"], s["id"], s["kind"] or "", s["direction"], s["target"],
                             p["week"], p["first"], p["last"], p["status"],
                             "" if p["value"] is None else p["value"], p["n"]])
    return _csv(["resident_id", "goal_id", "life_area", "icf", "goal_status", "indicator",
                 "alert_kind", "direction", "target", "week", "first", "last", "value_status",
                 "value", "n"], rows)


def digital_trial_csv(rep: dict[str, Any]) -> str:
    """One row per measure: baseline and trial."""
    b, tr = rep["baseline"], rep["trial"]
    rows: list[list[Any]] = [[k, b[k], tr[k]] for k in ("first", "last") + TRIAL_ROWS]
    for k in sorted(set(b["alerts_by_kind"]) | set(tr["alerts_by_kind"])):
        rows.append([f"alerts.{k}", b["alerts_by_kind"].get(k, 0),
                     tr["alerts_by_kind"].get(k, 0)])
    for g in rep["goals"]:
        for i in g["indicators"]:
            rows.append([f"goal.{g['id']}.{i['id']}", i["baseline"]["value"],
                         i["trial"]["value"]])
    return _csv(["measure", "baseline", "trial"],
                [[m, "" if x is None else x, "" if y is None else y] for m, x, y in rows])


def unit_csv(rep: dict[str, Any]) -> str:
    """One row per unit and life area."""
    rows = []
    for u in rep["units"]:
        for area, c in (u["life_areas"] or {"": dict.fromkeys(AREA_COLS, 0)}).items():
            rows.append([u["unit"], u["provider"] or "", area] + [c[k] for k in AREA_COLS]
                        + [u[k] for k in UNIT_ROWS])
    return _csv(["unit", "provider", "life_area", *AREA_COLS, *UNIT_ROWS], rows)


HTML = {"followup": followup_html, "digital_trial": digital_trial_html, "unit": unit_html}
CSV = {"followup": followup_csv, "digital_trial": digital_trial_csv, "unit": unit_csv}


def render(rep: dict[str, Any], fmt: str, lang: str = "sv") -> str:
    """A report in `fmt`: html, csv or json."""
    if fmt == "html":
        return HTML[rep["report"]](rep, lang)
    if fmt == "csv":
        return CSV[rep["report"]](rep)
    return json.dumps(rep, ensure_ascii=False, indent=2)
